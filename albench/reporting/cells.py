"""The one rule for which run records form a cell.

A *cell* is everything one number (or curve, bar, report row, compare column)
is computed from: the records of one (dataset, strategy, adapter, backbone
architecture). Records of different configurations — the run configuration
without its seed, hashed into a short *config id* — are never averaged. When a
cell has several configurations the choice is explicit:

1. a config id the user passed (``--config ID``, a prefix is enough), else
2. the configuration with the most seeds, then the most recently finished,
   then the smallest config id (so the choice never depends on file order).

The configurations left out are described by *what differs* from the chosen
one (an option diff such as ``adapter_options.vpt_tokens: 20 → 0``), never by
a bare hash. Tables, their extras, the report's figures and summary, and
``albench compare`` all call :func:`select` and so always show the same
configuration of a column.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from albench.api.errors import AlbenchError

#: config keys that never distinguish configurations (the seed varies inside a cell)
_NOT_CONFIG = ("seed",)

CellKey = tuple


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_id(record: dict) -> str:
    """Hash (8 hex digits) of the record's configuration without the seed: records sharing it may be averaged."""
    cfg = {k: v for k, v in record["config"].items() if k not in _NOT_CONFIG}
    return hashlib.sha256(_canonical(cfg).encode()).hexdigest()[:8]


def cell_key(record: dict) -> CellKey:
    """(dataset, strategy, adapter, backbone architecture): what one table cell stands for."""
    return (record["dataset"], record["strategy"], record["adapter"], record.get("backbone", {}).get("arch", "?"))


def labelled_cell_key(record: dict) -> CellKey:
    """``cell_key`` plus the run's column label: the columns of an option sweep or an ablation (same
    strategy and adapter, one label per configuration) stay separate cells."""
    return cell_key(record) + (record.get("label") or record["strategy"],)


def _flatten(obj, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):  # an empty dict adds no key: "no options" and "options absent" read the same
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def option_diff(config_a: dict, config_b: dict) -> dict[str, tuple[object, object]]:
    """Dotted keys whose values differ between two run configurations (seed ignored): {key: (a, b)}.

    A key missing on one side shows as :data:`UNSET` there.
    """
    fa = _flatten({k: v for k, v in config_a.items() if k not in _NOT_CONFIG})
    fb = _flatten({k: v for k, v in config_b.items() if k not in _NOT_CONFIG})
    return {
        k: (fa.get(k, UNSET), fb.get(k, UNSET))
        for k in sorted(set(fa) | set(fb))
        if fa.get(k, UNSET) != fb.get(k, UNSET)
    }


class _Unset:
    def __repr__(self) -> str:
        return "unset"


#: marks an option one configuration does not have
UNSET = _Unset()


def _short(v: object) -> str:
    if v is UNSET:
        return "unset"
    s = (v or '""') if isinstance(v, str) else _canonical(v)
    return s if len(s) <= 120 else s[:117] + "..."


def describe_diff(diff: dict[str, tuple[object, object]]) -> str:
    """``key: a → b; ...`` (the chosen configuration's value first)."""
    if not diff:
        return "identical options"
    return "; ".join(f"{k}: {_short(a)} → {_short(b)}" for k, (a, b) in diff.items())


def seeds_text(seeds: Iterable[int]) -> str:
    """'1 seed (seed 1)', '3 seeds (seeds 1, 2, 3)', '0 seeds'."""
    s = sorted(set(seeds))
    if not s:
        return "0 seeds"
    return f"{len(s)} seed{'s' if len(s) > 1 else ''} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))})"


@dataclass
class Config:
    """One configuration of a cell: its records and seeds."""

    id: str
    records: list[dict]

    @property
    def seeds(self) -> list[int]:
        return sorted({r["seed"] for r in self.records})

    @property
    def finished(self) -> str:
        return max((r.get("timing", {}).get("finished_at") or "") for r in self.records)

    @property
    def config(self) -> dict:
        return self.records[0]["config"]


@dataclass
class Cell:
    """The chosen configuration of one cell, how it was chosen, and the configurations left out."""

    key: CellKey
    chosen: Config
    rule: str  # "only configuration", "--config", "most seeds, then newest"
    others: list[Config] = field(default_factory=list)

    @property
    def records(self) -> list[dict]:
        return self.chosen.records

    def note(self, where: str | None = None) -> str | None:
        """One line naming the choice and what differs in the others; None when the cell has one configuration."""
        if not self.others:
            return None
        d, s, a, arch = self.key[:4]
        where = where or f"{d} {s} × {a} ({arch})"
        parts = [
            f"{describe_diff(option_diff(self.chosen.config, o.config))} ({seeds_text(o.seeds)}; config {o.id})"
            for o in self.others
        ]
        return (
            f"{where}: {len(self.others) + 1} configurations; showing config {self.chosen.id} "
            f"({seeds_text(self.chosen.seeds)}; chosen by {self.rule}); left out: " + " | ".join(parts)
        )


RULE_TEXT = (
    "a cell with several configurations shows the one passed with --config, else the one with the most "
    "seeds, then the newest"
)


def _match(ids: Sequence[str], cfg_id: str) -> bool:
    return any(cfg_id.startswith(p) for p in ids)


def select(
    records: Iterable[dict], configs: Sequence[str] = (), key: Callable[[dict], CellKey] = cell_key, strict: bool = True
) -> dict[CellKey, Cell]:
    """Group records into cells and choose one configuration per cell (the rule in the module docstring).

    ``configs`` are config ids (or prefixes) to prefer; with ``strict`` an id that matches no record's
    configuration is an error naming the ids that exist.
    """
    by_key: dict[CellKey, dict[str, list[dict]]] = {}
    for r in records:
        by_key.setdefault(key(r), {}).setdefault(config_id(r), []).append(r)
    configs = [c.strip().lower() for c in configs if c and c.strip()]
    if strict and configs:
        known = sorted({cid for groups in by_key.values() for cid in groups})
        for c in configs:
            if not any(k.startswith(c) for k in known):
                raise AlbenchError(
                    f"--config {c!r} matches no configuration in these records; known config ids: "
                    f"{', '.join(known) or 'none'}."
                )
    out: dict[CellKey, Cell] = {}
    for k, groups in by_key.items():
        cands = [Config(cid, recs) for cid, recs in groups.items()]
        picked = [c for c in cands if _match(configs, c.id)]
        if len(cands) == 1:
            chosen, rule = cands[0], "only configuration"
        elif len(picked) == 1:
            chosen, rule = picked[0], "--config"
        else:
            pool = picked or cands
            # most seeds, then newest, then the smallest id (independent of file order)
            chosen = max(pool, key=lambda c: (len(c.seeds), c.finished, _neg(c.id)))
            rule = "most seeds, then newest" if not picked else "--config (several matched), then most seeds"
        others = sorted((c for c in cands if c is not chosen), key=lambda c: (-len(c.seeds), c.id))
        out[k] = Cell(k, chosen, rule, others)
    return out


def _neg(s: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in s)


def chosen_records(
    records: Iterable[dict], configs: Sequence[str] = (), strict: bool = True, key: Callable[[dict], CellKey] = cell_key
) -> tuple[list[dict], list[str]]:
    """Records of the chosen configuration of every cell, plus one note per cell that had several."""
    cells = select(records, configs, key=key, strict=strict)
    recs = [r for c in cells.values() for r in c.records]
    notes = [n for c in cells.values() if (n := c.note())]
    return recs, notes
