"""albench: active learning with CLIP under tiny label budgets, benchmarked fairly."""

from albench import _aliases

__version__ = "0.1.0"
_aliases.install()
