"""User-facing errors.

Anything that is the user's input being wrong raises an ``AlbenchError``; the
CLI prints its message (no traceback unless ``--debug``) and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


class AlbenchError(Exception):
    """An error whose message is meant for the user, not a bug.

    ``field`` names the input at fault as the library knows it (``rounds``, ``results_dir``,
    ``workers``); the message may say ``{field}`` where it names it. ``str(error)`` reads the
    field's own name; a front end renders its own spelling with ``render`` (the CLI: ``--rounds``,
    ``--results-dir``), so library messages never name command-line flags.
    """

    exit_code = 2

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        self.field, self.template = field, message
        super().__init__(message.replace("{field}", field) if field else message)

    def render(self, spellings: Mapping[str, str]) -> str:
        """The message with the field spelled as ``spellings[field]`` (unchanged when the field is not in it)."""
        if not self.field:
            return str(self)
        return self.template.replace("{field}", spellings.get(self.field, self.field))

    def __reduce__(self):  # keep the field across processes (worker -> launcher)
        if self.field is None:
            return super().__reduce__()
        return _rebuild, (type(self), self.template, self.field)


def _rebuild(cls: type[AlbenchError], template: str, field: str) -> AlbenchError:
    err = cls.__new__(cls)
    AlbenchError.__init__(err, template, field=field)
    return err


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
