"""Command-line tools: detect, record, replay, demo."""
