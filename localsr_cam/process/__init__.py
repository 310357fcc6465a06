"""The per-frame work (steps 0–6 of DESIGN.md): FrameProcessor, the deadline controller
that picks each frame's quality level, skipping unchanged work, segmentation, mask
smoothing, person boxes, per-frame image ops and blending, on torch tensors.

May import zoo (to open engines), runtime (the engine interface, torch settings),
config, frames and errors; not capture, outputs, pipeline or above.
"""
