"""Capture and delivery: reader → journal (capture, sources), journal → sink (delivery, dispatch), the
supervisor that runs each connector as a task of its own, and the runner."""
