"""Deprecated location of the shared selection numerics, kept for one release.

The numerics live in :mod:`albench.components.selection` (one module per
algorithm); import from there. This module only re-exports those names.
"""

from albench.components.selection import *  # noqa: F401,F403
from albench.components.selection import __all__  # noqa: F401
