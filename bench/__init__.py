"""Benchmarks, run by hand: `python -m bench` (see the README)."""
