"""Where frames come from: the Source protocol, the sources (camera, video file, image
folder, synthetic clip), image file I/O and the capture thread with its one-frame slot.

Frames leave as ``uint8 H×W×3 BGR`` numpy arrays in a :class:`~localsr_cam.frames.CapturedFrame`.
May import config, frames, imaging, paths and errors; not process, outputs, pipeline or above.
"""
