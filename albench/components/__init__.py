"""Public building blocks shared by plugins (training loop, augmentation)."""
