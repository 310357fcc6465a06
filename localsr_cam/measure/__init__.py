"""Measuring the pipeline: bench, eval, metrics, figures and the degradation model."""
