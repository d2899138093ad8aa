"""albench: active learning with CLIP under tiny label budgets, benchmarked fairly."""
__version__ = "0.1.0"
