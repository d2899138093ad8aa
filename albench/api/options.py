"""Plugin options: defaults declared on the class, unknown keys rejected.

``--strategy-opt k=10`` and ``--adapter-opt epochs=5`` on the CLI become
keyword options; values are parsed as Python literals when they look like one.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping

from albench.api.errors import AlbenchError, unknown_name_message


def resolve_options(kind: str, name: str, defaults: Mapping, given: Mapping) -> dict:
    """Defaults updated with ``given``; an unknown key is an error naming the valid ones."""
    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise AlbenchError(unknown_name_message(f"option for {kind} '{name}'", key, defaults))
        default = defaults[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise AlbenchError(f"{kind} '{name}': option {key}={value!r} must be true or false.")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and not isinstance(value, (int, float)):
            raise AlbenchError(f"{kind} '{name}': option {key}={value!r} must be a number.")
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            if not value.is_integer():
                raise AlbenchError(f"{kind} '{name}': option {key}={value!r} must be an integer.")
            value = int(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    return out


def parse_option_strings(items: Iterable[str]) -> dict:
    """["k=10", "calibration=temperature", "deep=true"] -> {"k": 10, ...}."""
    out = {}
    for item in items:
        if "=" not in item:
            raise AlbenchError(f"Option '{item}' must look like key=value.")
        key, raw = item.split("=", 1)
        key, raw = key.strip(), raw.strip()
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
