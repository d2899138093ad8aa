"""albench's built-in adapters (installed as ``albench_adapters``)."""
