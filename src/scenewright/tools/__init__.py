"""What agent nodes call: output writing, and later segmentation, counting and overlays."""
