"""Real servers, one component at a time (type round trips, validate)."""
