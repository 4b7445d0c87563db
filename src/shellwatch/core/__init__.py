"""The pure detection core: stages, sequence correlation, classification, alerts. No I/O, no clock."""
