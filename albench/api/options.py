"""Plugin options: defaults and a schema declared on the class; unknown keys and bad values rejected.

A plugin class declares ``defaults`` (name -> default value) and, for options whose valid
values are narrower than "any value of the default's type", ``schema`` (name -> ``Opt``):
type, range, choices. Every value is checked before any run (the engine's preflight) and
again when the plugin is built.

``--strategy-opt k=10`` and ``--adapter-opt epochs=5`` on the CLI become
keyword options; values are parsed as Python literals when they look like one.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from albench.api.errors import AlbenchError, unknown_name_message


@dataclass(frozen=True)
class Opt:
    """One option's declared schema: its type, range and choices.

    ``type`` is ``int``, ``float``, ``bool`` or ``str``; ``low``/``high`` bound numbers
    (``low_open``/``high_open`` make a bound exclusive); ``choices`` lists the valid values.
    ``high`` exists so a value that would run for days (``epochs=1e9``) is refused before any run.
    Bools are never ints: ``epochs=true`` is an error, not 1.
    """

    type: type
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    low_open: bool = False
    high_open: bool = False
    help: str = ""

    def describe(self) -> str:
        """The valid values in words, e.g. 'an integer in 1..1000' or 'one of end, middle, front'."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.type is bool:
            return "true or false"
        if self.type is str:
            return "a string"
        noun = "an integer" if self.type is int else "a finite number"
        g: Callable[[float], str] = (lambda x: str(int(x))) if self.type is int else (lambda x: f"{x:g}")
        if self.low is None and self.high is None:
            return noun
        if self.low is not None and self.high is not None:
            if self.type is int and not self.low_open and not self.high_open:
                return f"{noun} in {g(self.low)}..{g(self.high)}"
            return f"{noun} in {'(' if self.low_open else '['}{g(self.low)}, {g(self.high)}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {g(self.low)}"
        assert self.high is not None
        return f"{noun} {'<' if self.high_open else '<='} {g(self.high)}"

    def check(self, value: Any) -> tuple[Any, bool]:
        """(value converted to the declared type, valid?)."""
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if ok:
                value = float(value)
        else:
            ok = isinstance(value, self.type)
        if ok and self.choices is not None:  # 1 == True in Python; a choice matches by type and value
            ok = any(type(value) is type(c) and value == c for c in self.choices)
        if ok and self.type in (int, float):
            if self.low is not None:
                ok = value > self.low if self.low_open else value >= self.low
            if ok and self.high is not None:
                ok = value < self.high if self.high_open else value <= self.high
        return value, ok


def schema_for(defaults: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict[str, Opt]:
    """The declared schema, completed for undeclared options by the type of their default."""
    out = dict(schema or {})
    for key, default in defaults.items():
        if key not in out:
            typ = (
                bool if isinstance(default, bool) else type(default) if isinstance(default, (int, float, str)) else None
            )
            out[key] = Opt(typ if typ is not None else object)
    return out


def option_problems(
    kind: str, name: str, defaults: Mapping[str, Any], given: Mapping[str, Any], schema: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(resolved options, one message per invalid option): unknown keys, wrong types, out of range."""
    full = schema_for(defaults, schema)
    out, problems = dict(defaults), []
    for key, value in given.items():
        if key not in defaults:
            problems.append(unknown_name_message(f"option for {kind} '{name}'", key, defaults))
            continue
        value, ok = full[key].check(value)
        if not ok:
            problems.append(
                f"{kind} '{name}': option {key}={value!r} is not valid; expected "
                f"{full[key].describe()} (default {defaults[key]!r})."
            )
            continue
        out[key] = value
    return out, problems


def resolve_options(
    kind: str, name: str, defaults: Mapping[str, Any], given: Mapping[str, Any], schema: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Defaults updated with ``given``; an unknown or invalid value is an error naming the valid ones."""
    out, problems = option_problems(kind, name, defaults, given, schema)
    if problems:
        raise AlbenchError(problems[0])
    return out


def parse_option_strings(items: Iterable[str]) -> dict[str, Any]:
    """["k=10", "calibration=temperature", "deep=true"] -> {"k": 10, ...}."""
    out = {}
    for item in items:
        if "=" not in item:
            raise AlbenchError(f"Option '{item}' must look like key=value.")
        key, raw = item.split("=", 1)
        key, raw = key.strip(), raw.strip()
        if not key or key.endswith(":"):
            raise AlbenchError(f"Option '{item}' has no name before '='; use key=value (or name:key=value).")
        lowered = raw.lower()
        if lowered in ("true", "false"):
            value: object = lowered == "true"
        elif lowered in ("nan", "inf", "+inf", "-inf"):
            value = float(lowered)
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
        out[key] = value
    return out
