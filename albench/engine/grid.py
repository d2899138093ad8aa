"""Grids of runs: axes and presets expanded to ``RunSpec``s, and their status.

A grid is the product strategy x adapter x dataset x seed (budgets are rounds
of one trajectory, so they select what tables show, not extra runs). The
paper's experiments are presets, TOML files in ``albench/presets/``: a list of
table columns (label, strategy, adapter), datasets, budgets, seeds and a
backbone, plus ``suites.toml`` mapping each paper dataset to its toy stand-in.
Columns whose strategy or adapter is not installed are skipped with a warning,
so a preset runs with whatever plugins exist.
"""
from __future__ import annotations

import dataclasses
import tomllib
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from albench.clip.backbone import BackboneSpec
from albench.api.errors import AlbenchError, UnknownNameError

# --- presets -----------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """One table column: runs of ``strategy`` x ``adapter``, shown as ``label``."""

    label: str
    strategy: str
    adapter: str
    role: str = "baseline"  # baseline | ours
    dash_budgets: tuple[int, ...] = ()  # budgets the paper prints as "—"


@dataclass(frozen=True)
class Preset:
    """A preset resolved for one suite (dataset names are the ones runs use)."""

    name: str
    suite: str
    title: str
    paper_table: int | None
    adapter: str
    adapter_title: str
    backbone_title: str
    columns: tuple[Column, ...]
    datasets: tuple[str, ...]  # registered dataset names for this suite
    paper_datasets: tuple[str, ...]  # the paper dataset each one stands for (same order)
    titles: dict  # dataset -> row title
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    rounds: int
    backbone: BackboneSpec
    skipped_columns: tuple[str, ...] = ()  # "Label (reason)" for columns whose plugins are missing
    options: dict = field(default_factory=dict)  # suite-level plugin options: {plugin name: {key: value}}

    @property
    def slug(self) -> str:
        return self.name if self.suite == "paper" else f"{self.name}_{self.suite}"

    def paper_title(self, dataset: str) -> str:
        d = self.paper_datasets[self.datasets.index(dataset)]
        return _suites()["paper"]["titles"].get(d, d)


def _preset_dir():
    return resources.files("albench.engine") / "presets"


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".toml") and p.name != "suites.toml")


def _suites() -> dict:
    return tomllib.loads((_preset_dir() / "suites.toml").read_text())


def load_preset(name: str, suite: str = "paper") -> Preset:
    """Read ``presets/<name>.toml`` (or a preset file: a path ending in ``.toml``), check it against the
    preset schema (``albench.engine.preset_schema``) and map it onto ``suite`` (paper or toy)."""
    from albench.engine.preset_schema import check_preset, read_preset_file

    if str(name).endswith(".toml"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise AlbenchError(f"Preset file {path} does not exist. Built-in presets: {', '.join(preset_names())}.")
        text, name = None, path.stem
    elif name not in preset_names():
        raise UnknownNameError("preset", name, preset_names())
    else:
        path = Path(f"albench/engine/presets/{name}.toml")
        text = (_preset_dir() / f"{name}.toml").read_text(encoding="utf-8")
    suites = _suites()
    if suite not in suites:
        raise UnknownNameError("suite", suite, suites)
    raw = check_preset(read_preset_file(path, text), path)
    s = suites[suite]
    paper_ds = list(raw["datasets"])
    if "datasets" in s:  # a stand-in suite: map, and drop datasets without a stand-in
        mapping = s["datasets"]
        paper_ds = [d for d in paper_ds if d in mapping]
        datasets = [mapping[d] for d in paper_ds]
        titles = {mapping[d]: f"{mapping[d]} ({suites['paper']['titles'].get(d, d)})" for d in paper_ds}
    else:
        datasets = paper_ds
        titles = {d: suites["paper"]["titles"].get(d, d) for d in paper_ds}
    bb = dict(raw.get("backbone", {}))
    bb.update(s.get("backbone", {}))
    if "backbone" in s and "pretrained" not in s["backbone"]:
        bb.pop("pretrained", None)
    columns = tuple(Column(c["label"], c["strategy"], c.get("adapter", raw["adapter"]), c.get("role", "baseline"),
                           tuple(c.get("dash_budgets", ()))) for c in raw["columns"])
    return Preset(name=name, suite=suite, title=raw["title"], paper_table=raw.get("paper_table"),
                  adapter=raw["adapter"], adapter_title=raw.get("adapter_title", raw["adapter"]),
                  backbone_title=raw.get("backbone_title", bb.get("arch", "")), columns=columns,
                  datasets=tuple(datasets), paper_datasets=tuple(paper_ds), titles=titles,
                  budgets=tuple(raw.get("budgets", (1, 2, 5))), seeds=tuple(raw.get("seeds", (1, 2, 3))),
                  rounds=int(raw.get("rounds", 6)), backbone=BackboneSpec(**bb),
                  options={k: dict(v) for k, v in s.get("options", {}).items()})


def available_columns(preset: Preset) -> Preset:
    """The preset without the columns whose strategy or adapter is not installed (warned once)."""
    from albench.api.plugins import ADAPTERS, STRATEGIES

    keep, skipped = [], []
    s_names, a_names = set(STRATEGIES.names()), set(ADAPTERS.names())
    for c in preset.columns:
        missing = [f"strategy '{c.strategy}'" for _ in [0] if c.strategy not in s_names] + \
                  [f"adapter '{c.adapter}'" for _ in [0] if c.adapter not in a_names]
        if missing:
            skipped.append(f"{c.label} ({' and '.join(missing)} not registered)")
        else:
            keep.append(c)
    if skipped:
        warnings.warn(f"preset {preset.name}: skipping column(s) {'; '.join(skipped)}", stacklevel=2)
    return dataclasses.replace(preset, columns=tuple(keep), skipped_columns=tuple(skipped))


# --- grids -------------------------------------------------------------------

@dataclass
class Grid:
    """An expanded grid: the runs, and what tables should show of them."""

    specs: list
    budgets: tuple[int, ...]
    preset: Preset | None = None
    notes: list[str] = field(default_factory=list)
    default_backbone: bool = False  # nobody chose the backbone (the toy CLIP): the preflight refuses real data


def split_scoped_options(items: dict) -> tuple[dict, dict]:
    """``{"coop:epochs": 2, "lr": 0.1}`` -> ({"lr": 0.1}, {"coop": {"epochs": 2}})."""
    plain, scoped = {}, {}
    for k, v in items.items():
        if ":" in k:
            name, key = k.split(":", 1)
            scoped.setdefault(name.strip(), {})[key.strip()] = v
        else:
            plain[k] = v
    return plain, scoped


def _options_for(name: str, plain: dict, scoped: dict) -> dict:
    return {**plain, **scoped.get(name, {})}


def expand_all(values: list[str], universe: list[str], kind: str) -> list[str]:
    """``all`` -> every registered name; otherwise the list, each name checked."""
    if values == ["all"]:
        return list(universe)
    for v in values:
        if v not in universe:
            raise UnknownNameError(kind, v, universe)
    return values


def budget_rounds(budgets, round_fraction: float, round_budget: int | None) -> dict[int, int]:
    """Budget (% of the pool) -> the round that reaches it. With an absolute ``--round-budget``,
    budgets name rounds directly."""
    out = {}
    for b in budgets:
        if round_budget is not None:
            r = float(b)
        else:
            r = float(b) / (round_fraction * 100.0)
        if r < 1 or abs(r - round(r)) > 1e-6:
            raise AlbenchError(f"Budget {b:g} % is not a whole number of rounds of {round_fraction * 100:g} %.")
        out[b] = int(round(r))
    return out


def build_grid(*, preset: str | None = None, suite: str = "paper", strategies: list[str] | None = None,
               adapters: list[str] | None = None, datasets: list[str] | None = None, seeds: list[int] | None = None,
               budgets: list[int] | None = None, rounds: int | None = None, round_fraction: float = 0.01,
               round_budget: int | None = None, backbone: BackboneSpec | None = None,
               strategy_options: dict | None = None, adapter_options: dict | None = None,
               data_root: str | None = None, default_strategies: list[str] | None = None) -> Grid:
    """Expand CLI axes (or a preset, filtered by them) to validated run specs."""
    from albench.api.errors import InputProblems
    from albench.api.options import option_problems
    from albench.api.plugins import ADAPTERS, STRATEGIES
    from albench.engine.protocol import RunSpec
    from albench.data.tasks import task_names

    s_plain, s_scoped = split_scoped_options(strategy_options or {})
    a_plain, a_scoped = split_scoped_options(adapter_options or {})
    notes: list[str] = []
    if preset is not None:
        p = available_columns(load_preset(preset, suite))
        notes += [f"skipped column {s}" for s in p.skipped_columns]
        cols = list(p.columns)
        if strategies and strategies != ["all"]:
            known = sorted({c.strategy for c in p.columns} | {c.label for c in p.columns})
            for s in strategies:
                if s not in known:
                    raise UnknownNameError(f"strategy or column of preset {preset}", s, known)
            cols = [c for c in cols if c.strategy in strategies or c.label in strategies]
        if adapters:
            cols = [c for c in cols if c.adapter in adapters]
        ds = list(p.datasets)
        if datasets and datasets != ["all"]:
            allowed = {**{d: d for d in p.datasets}, **dict(zip(p.paper_datasets, p.datasets))}
            for d in datasets:
                if d not in allowed:
                    raise UnknownNameError(f"dataset of preset {preset} ({suite} suite)", d, allowed)
            ds = [allowed[d] for d in datasets]
        seeds = list(seeds or p.seeds)
        budgets = list(budgets or p.budgets)
        rounds = p.rounds if rounds is None else rounds
        bspec = backbone or p.backbone
        triples = [(c.strategy, c.adapter, c.label) for c in cols]
        in_grid = {t[0] for t in triples} | {t[1] for t in triples}
        for name, opts in p.options.items():  # the suite's options, under anything given on the command line
            if name in in_grid:
                s_scoped[name] = {**opts, **s_scoped.get(name, {})}
                a_scoped[name] = {**opts, **a_scoped.get(name, {})}
    else:
        s_names = expand_all(strategies or default_strategies or ["random"], STRATEGIES.names(), "strategy")
        a_names = expand_all(adapters or ["coop"], ADAPTERS.names(), "adapter")
        ds = expand_all(datasets or ["digits"], task_names(), "dataset")  # the demo task (cli.DEMO_DATASET)
        seeds = list(seeds or [1])
        rounds = 6 if rounds is None else rounds
        budgets = list(budgets or [b for b in (1, 2, 5) if b <= rounds * round_fraction * 100 + 1e-9] or [1])
        bspec = backbone or BackboneSpec()
        triples = [(s, a, None) for a in a_names for s in s_names]
        p = None
    if rounds <= 0:  # before budgets are mapped onto rounds
        raise AlbenchError(f"{{field}} must be a positive integer, got {rounds}.", field="rounds")
    if len(set(seeds)) != len(seeds):
        raise AlbenchError(f"Duplicate seeds in {seeds}.")
    br = budget_rounds(budgets, round_fraction, round_budget)
    if max(br.values()) > rounds:
        b = max(br, key=br.get)
        raise AlbenchError(f"Budget {b:g} % needs round {br[b]}, but runs have only {rounds} round(s); "
                           f"raise {{field}} or drop that budget.", field="rounds")
    # Validate names and options once, before anything runs: every bad value, one message each.
    problems: list[str] = []
    for kind, reg, name, plain, scoped in [("strategy", STRATEGIES, s, s_plain, s_scoped) for s in
                                           dict.fromkeys(t[0] for t in triples)] + \
                                          [("adapter", ADAPTERS, a, a_plain, a_scoped) for a in
                                           dict.fromkeys(t[1] for t in triples)]:
        cls = reg.get(name)
        problems += option_problems(kind, name, cls.defaults, _options_for(name, plain, scoped),
                                    getattr(cls, "schema", None))[1]
    if problems:
        raise InputProblems(list(dict.fromkeys(problems)))
    for name in list(s_scoped) + list(a_scoped):
        if name not in {t[0] for t in triples} | {t[1] for t in triples}:
            raise AlbenchError(f"Scoped option for '{name}', which is not in this grid.")
    specs = [RunSpec(s, a, d, seed, _options_for(s, s_plain, s_scoped), _options_for(a, a_plain, a_scoped), bspec,
                     rounds, round_fraction, round_budget, data_root, label)
             for d in ds for s, a, label in triples for seed in seeds]
    seen = set()
    unique = []
    for sp in specs:  # the same run may back two columns (never happens in the shipped presets)
        key = (sp.strategy, sp.adapter, sp.dataset, sp.seed)
        if key not in seen:
            seen.add(key)
            unique.append(sp)
    for sp in unique:
        sp.validate()
    return Grid(unique, tuple(budgets), p, notes, default_backbone=backbone is None and preset is None)


# --- status --------------------------------------------------------------------

@dataclass
class RunState:
    spec: object
    state: str  # done | failed | running | pending | unresolved
    path: Path | None
    detail: str = ""


def run_state(spec, results_dir: str | Path, ws) -> RunState:
    """Where one run stands, resolved by the run store exactly as ``execute`` names its record."""
    from albench.engine import store

    try:
        loc = store.resolve(spec, results_dir, ws).location
    except AlbenchError as exc:
        return RunState(spec, "unresolved", None, str(exc))
    if loc.read() is not None:
        return RunState(spec, "done", loc.record)
    if loc.running():
        return RunState(spec, "running", loc.record)
    err = loc.failure_error()
    if err is not None:
        return RunState(spec, "failed", loc.record, err)
    return RunState(spec, "pending", loc.record)


def grid_status(grid: Grid, results_dir: str | Path, ws) -> list[RunState]:
    return [run_state(sp, results_dir, ws) for sp in grid.specs]
