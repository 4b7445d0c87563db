"""Local Apicurio Registry (Confluent-compatible API) for tests: built from Maven Central with Maven."""

from shellwatch.local.registry.registry import (
    APICURIO_VERSION,
    LocalRegistry,
    RegistryBuildError,
    RegistryError,
    RegistryStartError,
    build_registry,
    register_schema,
    registry_jar_path,
)

__all__ = [
    "APICURIO_VERSION",
    "LocalRegistry",
    "RegistryBuildError",
    "RegistryError",
    "RegistryStartError",
    "build_registry",
    "register_schema",
    "registry_jar_path",
]
