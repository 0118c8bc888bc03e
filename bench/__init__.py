"""Benchmarks: a national-scale dataset builder and the measurements run against it."""
