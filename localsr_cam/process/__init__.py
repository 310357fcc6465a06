"""The per-frame work (steps 0–6 of DESIGN.md): FrameProcessor, the temporal denoiser of
video frames, the deadline controller that picks each frame's quality level, skipping
unchanged work, people finding (faces,
tracking, a selfie crop per person, the close-up/people choice), segmentation, mask
smoothing, person boxes and SR regions, per-frame image ops and blending, on torch
tensors.

May import zoo (to open engines), runtime (the engine interface, torch settings),
config, frames, imaging and errors; not capture, outputs, pipeline or above.
"""
