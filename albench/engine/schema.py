"""The run record's schema, as dataclasses: one ``RoundRecord`` per AL round inside one ``RunRecord``.

A record is the JSON object ``RunRecord.to_dict()`` (key order = field order below), written by the run
store (``albench.engine.store``) and read back as plain dicts by tables and reports. Sub-objects whose
content belongs to other modules stay dicts and are documented there: ``train`` (the adapter's
``fit`` facts), ``diagnostics`` (``albench.engine.diagnostics``, docs/records.md), ``provenance``
(``albench.engine.provenance``), ``environment``, ``compute``, ``backbone``. A new top-level or per-round
key is a new field here, with its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


def _as_dict(obj: Any) -> dict[str, Any]:
    """Fields in declaration order, values as they are (no deep copy, unlike ``dataclasses.asdict``)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass
class RoundRecord:
    """One AL round: what was selected, what it cost, how the trained adapter did."""

    round: int  # 1-based
    labeled: int  # labelled pool samples after this round's selection
    budget_pct: float  # labeled as % of the pool (4 decimals)
    accuracy: float  # top-1 test accuracy (%) of the adapter trained this round
    selection_mode: str  # the strategy's name, or "random (no labels yet)" for needs_labels strategies in round 1
    selected: list[int]  # the pool indices picked this round, in the strategy's order
    selected_class_hist: list[int]  # true classes of the picks, per class (length C)
    classes_covered: int  # distinct true classes among all labelled samples
    pseudo_labeled: int  # pseudo-labelled samples the adapter trained on (0: none)
    train: dict[str, Any]  # the adapter's fit() facts: steps, final_loss, seconds, ...
    seconds: dict[str, float]  # wall seconds of select / train / evaluate / diagnostics
    encoder: dict[str, int]  # image-encoder images by phase (select, train, diagnostics, caching)
    diagnostics: dict[str, Any]  # per-round diagnostics (docs/records.md)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass
class RunRecord:
    """One run (one AL trajectory): its identity, the rounds, and where and how it ran."""

    schema: int  # records.SCHEMA
    run_id: str  # "<strategy>__<adapter>__seed<s>__<config_hash>", the record's file name
    config_hash: str  # hash of ``config``
    config: dict[str, Any]  # everything that affects the numbers (protocol.run_config)
    label: str  # table column name (the strategy unless a preset names it)
    strategy: str
    adapter: str
    dataset: str
    seed: int
    pool_size: int
    test_size: int
    num_classes: int
    round_budget: int  # labels added per round
    zero_shot_accuracy: float  # test accuracy (%) of zero-shot CLIP with the dataset's template
    backbone: dict[str, Any]  # Backbone.describe(): architecture, weights, identity
    rounds: list[dict[str, Any]]  # RoundRecord.to_dict() per round
    encoder_passes: dict[str, int]  # image-encoder images over the whole run
    plugins: dict[str, Any]  # registry info (name, target, distribution, version) of strategy and adapter
    timing: dict[str, Any]  # total_seconds, started_at, finished_at
    environment: dict[str, Any]  # versions, platform, git sha
    device: str
    provenance: dict[str, Any]  # albench.engine.provenance
    compute: dict[str, Any]  # device type, precision, deterministic flag

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)
