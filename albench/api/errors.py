"""User-facing errors.

Anything that is the user's input being wrong raises an ``AlbenchError``; the
CLI prints its message (no traceback unless ``--debug``) and exits non-zero.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class AlbenchError(Exception):
    """An error whose message is meant for the user, not a bug."""

    exit_code = 2


class UnknownNameError(AlbenchError, KeyError):
    """A name (strategy, adapter, dataset, preset, ...) that is not registered."""

    def __init__(self, kind: str, name: str, available: Iterable[str]):
        self.kind, self.name, self.available = kind, name, sorted(available)
        super().__init__(unknown_name_message(kind, name, self.available))

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


def unknown_name_message(kind: str, name: str, available: Iterable[str]) -> str:
    available = sorted(available)
    msg = f"Unknown {kind} '{name}'."
    close = difflib.get_close_matches(str(name), available, n=3, cutoff=0.6)
    if close:
        msg += f" Did you mean: {', '.join(close)}?"
    msg += f" Available: {', '.join(available) if available else '(none)'}"
    return msg


class InputProblems(AlbenchError):
    """Several problems with the input, found before any run; the CLI prints one ``error:`` line each."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class PluginLoadError(AlbenchError):
    """A registered plugin whose import failed or that is not the right kind of object."""


class ContractError(AlbenchError):
    """A strategy or adapter broke its documented contract (wrong indices, wrong shapes)."""


class DataError(AlbenchError):
    """A dataset that is missing, malformed or does not match its expected layout."""


class WeightsError(AlbenchError):
    """Backbone weights that are missing, unreadable or do not fit the architecture."""


class TrainingError(AlbenchError):
    """Training diverged (NaN/inf loss); names the round and step."""
