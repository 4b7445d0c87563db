"""The fault suite runs on the same real broker as the integration tests (started once per session)."""

from tests.integration.conftest import kafka_bootstrap, kafka_libs, pytest_collection_modifyitems

__all__ = ["kafka_bootstrap", "kafka_libs", "pytest_collection_modifyitems"]
