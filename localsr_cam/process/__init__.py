"""Processing one frame: people finding, mask smoothing, boxes, blending, control.

Owns everything between a captured frame and a processed one; imports engines and
ops, never capture, outputs or the CLI.
"""
