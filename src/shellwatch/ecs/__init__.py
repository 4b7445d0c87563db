"""ECS field access, typed events and timestamps: the lowest layer."""
