"""Kafka plumbing: security, partitioning, headers, topic admin, schema registry, dead letters."""
