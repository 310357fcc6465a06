"""Training the super-resolution models (``localsr-cam train``) and shipping them.

Owns the training data and loop (``data``, ``trainer``), the int8 form of a trained net
for the CPU backend (``quantize``), its options and the shipped files' manifest entries.
May import
measure (the degradation model and metrics shared with eval), process.estimate (the
per-frame degradation estimator, so training sees the levels the app computes), capture
(image files), zoo, runtime (process-wide torch settings), models, paths and errors; not
cli, pipeline, outputs or the rest of process.
"""
