"""albench's built-in acquisition strategies (installed as ``albench_strategies``)."""
