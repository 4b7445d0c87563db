"""``python -m shellwatch.localkafka`` runs ``python -m shellwatch.local.kafka`` (same arguments)."""

import runpy

runpy.run_module("shellwatch.local.kafka", run_name="__main__", alter_sys=True)
