"""Local services for the demo and tests: a Kafka broker, a schema registry, worker processes."""
