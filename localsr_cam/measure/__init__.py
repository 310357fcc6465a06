"""Measuring the pipeline: CPU use of this process, a reproducible CPU load beside it."""
