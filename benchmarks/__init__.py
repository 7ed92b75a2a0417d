"""Benchmarks and results tooling, outside the library."""
