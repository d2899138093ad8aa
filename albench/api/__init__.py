"""The plugin-facing API: what strategy, adapter and dataset authors import."""
