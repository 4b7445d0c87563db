"""Alias kept for ``python -m shellwatch.localkafka …``: the broker tools now live in ``shellwatch.local.kafka``."""
