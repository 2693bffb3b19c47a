"""Benchmarks: scripted, printing numbers and ratios against a baseline measured in the same run."""
