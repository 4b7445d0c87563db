"""Replaying captures into topics and asserting the alerts they raise."""
