"""Capture and delivery loops: reader → journal (capture), journal → sink (delivery), and the runner."""
