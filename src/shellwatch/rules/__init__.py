"""Rule definitions and allowlists (data files) and their typed loader."""
