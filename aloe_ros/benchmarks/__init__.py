"""Benchmarks that run whole systems (learning in the loop), behind `aloe-ros bench`."""
