"""The per-frame work (steps 0–6 of DESIGN.md): FrameProcessor, segmentation, mask
smoothing, person boxes, per-frame image ops and blending, on torch tensors.

May import zoo (to open engines), runtime's engine interface, config, frames and errors;
not capture, outputs, pipeline or above.
"""
