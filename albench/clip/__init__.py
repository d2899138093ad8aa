"""The CLIP backbone: open_clip wrapper, hooks and the shared-prefix text encoder."""
