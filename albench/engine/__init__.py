"""The engine: the AL protocol, run records, grids, presets and launchers."""
