"""Stage 1: a bare consumer that screens, dead-letters and forwards relevant records."""
