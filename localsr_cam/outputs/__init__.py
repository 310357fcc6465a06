"""Where frames go: the Sink protocol and the sinks (virtual camera, preview window with
its HUD, video file, image folder, null).

May import config, frames, paths and errors; not capture, process, pipeline or above.
"""
