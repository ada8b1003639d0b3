"""Whole paths with real processes: crash, restart, replay, modes, failures."""
