"""Preset files against a schema: TOML errors and unknown or mistyped keys are clear errors, never ignored.

A preset (``albench/engine/presets/<name>.toml``, or a user's own file passed as ``--preset
path/to/file.toml``) is read with :func:`read_preset_file`: a TOML syntax error names the file, line
and column; :func:`preset_problems` lists every key that is unknown (with a did-you-mean: a typo
such as ``seed`` for ``seeds`` would otherwise silently fall back to the default), missing or of the
wrong type. The loader raises one :class:`~albench.api.errors.InputProblems` with all of them.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from albench.api.errors import AlbenchError, InputProblems

# key -> (python type(s), required, description); "list[X]" is a list whose items are X
TOP: dict[str, tuple[Any, bool, str]] = {
    "title": (str, True, "a string"),
    "paper_table": (int, False, "an integer"),
    "adapter": (str, True, "an adapter name"),
    "adapter_title": (str, False, "a string"),
    "backbone_title": (str, False, "a string"),
    "datasets": ("list[str]", True, "a non-empty list of dataset names"),
    "budgets": ("list[num]", False, "a list of budgets in % (numbers > 0)"),
    "seeds": ("list[int]", False, "a list of integer seeds"),
    "rounds": (int, False, "an integer >= 1"),
    "backbone": (dict, False, "a table with arch, pretrained, quick_gelu"),
    "columns": ("list[dict]", True, "a non-empty array of [[columns]] tables"),
    "ablation": (dict, False, "a table with column, strategy_options, adapter_options"),
}
BACKBONE: dict[str, tuple[Any, bool, str]] = {
    "arch": (str, False, "an open_clip architecture or toy-clip"),
    "pretrained": (str, False, "a pretrained tag or a weights file"),
    "quick_gelu": (bool, False, "true or false"),
}
COLUMN: dict[str, tuple[Any, bool, str]] = {
    "label": (str, True, "the column's printed label"),
    "strategy": (str, True, "a strategy name"),
    "adapter": (str, False, "an adapter name (default: the preset's adapter)"),
    "role": (str, False, "baseline or ours"),
    "dash_budgets": ("list[num]", False, "a list of budgets printed as a dash"),
    "strategy_options": (dict, False, "a table of strategy options (a list value sweeps it)"),
    "adapter_options": (dict, False, "a table of adapter options (a list value sweeps it)"),
    "note": (str, False, "a note printed under the table"),
}
ABLATION: dict[str, tuple[Any, bool, str]] = {
    "column": (str, True, "the label of the column whose options are varied"),
    "strategy_options": (dict, False, "a table: option -> list of values"),
    "adapter_options": (dict, False, "a table: option -> list of values"),
}
ROLES = ("baseline", "ours")


def read_preset_file(path: Path, text: str | None = None) -> dict:
    """Parse a preset file; a syntax error names the file, line and column (tomllib says where)."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8") if text is None else text)
    except OSError as exc:
        raise AlbenchError(f"Cannot read preset file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise AlbenchError(f"Preset file {path} is not UTF-8 text (byte {exc.start}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise AlbenchError(f"Preset file {path} is not valid TOML: {exc}.") from None


def _type_ok(value: Any, typ: Any) -> bool:
    if typ == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if typ == "list[int]":
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if typ == "list[num]":
        return isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value
        )
    if typ == "list[dict]":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def _table_problems(where: str, table: dict, schema: dict) -> list[str]:
    out = []
    for key in table:
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            out.append(f"{where}: unknown key '{key}'.{hint} Valid keys: {', '.join(schema)}.")
    for key, (typ, required, desc) in schema.items():
        if key not in table:
            if required:
                out.append(f"{where}: missing key '{key}' ({desc}).")
            continue
        if not _type_ok(table[key], typ):
            out.append(f"{where}: '{key}' = {table[key]!r} must be {desc}.")
    return out


def preset_problems(raw: dict, path: Path | str) -> list[str]:
    """Every problem of a parsed preset, one message each (empty: valid)."""
    where = f"Preset file {path}"
    out = _table_problems(where, raw, TOP)
    if isinstance(raw.get("datasets"), list) and not raw["datasets"]:
        out.append(f"{where}: 'datasets' is empty; list at least one dataset.")
    if _type_ok(raw.get("rounds"), int) and raw["rounds"] < 1:
        out.append(f"{where}: 'rounds' = {raw['rounds']} must be an integer >= 1.")
    if isinstance(raw.get("ablation"), dict):
        out += _table_problems(f"{where} [ablation]", raw["ablation"], ABLATION)
    if isinstance(raw.get("backbone"), dict):
        out += _table_problems(f"{where} [backbone]", raw["backbone"], BACKBONE)
    if isinstance(raw.get("columns"), list):
        if not raw["columns"]:
            out.append(f"{where}: 'columns' is empty; add at least one [[columns]] table.")
        for i, col in enumerate(raw["columns"], 1):
            if isinstance(col, dict):
                out += _table_problems(f"{where} [[columns]] #{i}", col, COLUMN)
                if isinstance(col.get("role"), str) and col["role"] not in ROLES:
                    out.append(f"{where} [[columns]] #{i}: 'role' = {col['role']!r} must be one of {', '.join(ROLES)}.")
    return out


def check_preset(raw: dict, path: Path | str) -> dict:
    """``raw`` if valid; else raise one :class:`InputProblems` naming every problem."""
    problems = preset_problems(raw, path)
    if problems:
        raise InputProblems(problems)
    return raw
