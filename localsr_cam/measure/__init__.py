"""Measuring the filter: bench (speed of the real pipeline, with an optional CPU load
beside it), eval (quality, the paper's tables), metrics, figures, and the degradation
model shared with training.

May import pipeline, capture, process, outputs, config, zoo, runtime, frames, paths and
errors; not cli or train.
"""
