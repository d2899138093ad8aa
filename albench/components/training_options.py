"""Validation of the training options every adapter shares (``epochs``, ``lr``, ``batch_size``, ``min_steps``).

One check for all adapters, so an impossible value fails the same way, naming the
adapter, the value and the valid range, before any training starts.
"""

from __future__ import annotations

from typing import Any, Mapping

from albench.api.errors import AlbenchError


def check_training_options(name: str, opts: Mapping[str, Any]) -> None:
    """Reject impossible training options with a message naming the value and the valid range."""
    if opts["epochs"] < 1:
        raise AlbenchError(f"{name}: epochs={opts['epochs']!r}; valid: an integer >= 1 (paper: 10 or 20).")
    if not opts["lr"] > 0:
        raise AlbenchError(f"{name}: lr={opts['lr']!r}; valid: a number > 0 (paper grid: 0.001, 0.01, 0.03).")
    if opts["batch_size"] < 1:
        raise AlbenchError(f"{name}: batch_size={opts['batch_size']!r}; valid: an integer >= 1 (paper: 16).")
    if opts.get("min_steps", 0) < 0:
        raise AlbenchError(f"{name}: min_steps={opts['min_steps']!r}; valid: an integer >= 0.")
