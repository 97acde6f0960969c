"""Benchmarks (``make bench``): they print a table and write JSON; no test asserts on timings."""
