"""Benchmarks (make bench): each script starts what it measures and compares against a baseline."""
