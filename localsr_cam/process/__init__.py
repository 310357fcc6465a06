"""Processing one frame: FrameProcessor steps, people finding, masks, boxes, ops, estimate."""
