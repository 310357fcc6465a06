"""Processing one frame: quality levels against the frame deadline, and skipped work."""
