"""Benchmarks: scripts that print figures (run each with `python -m benchmarks.NAME`)."""
