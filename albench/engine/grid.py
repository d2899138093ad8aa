"""Grids of runs: axes and presets expanded to ``RunSpec``s, and their status.

A grid is the product strategy x adapter x dataset x seed (budgets are rounds
of one trajectory, so they select what tables show, not extra runs). The
paper's experiments are presets, TOML files in ``albench/presets/``: a list of
table columns (label, strategy, adapter), datasets, budgets, seeds and a
backbone, plus ``suites.toml`` mapping each paper dataset to its toy stand-in.
Columns whose strategy or adapter is not installed are skipped with a warning,
so a preset runs with whatever plugins exist.

Option sweeps are a grid axis. A plugin option given a list of values
(``--adapter-opt dualprompt:lam=0.5,1,2``; in a preset column
``adapter_options = {lam = [0.5, 1, 2]}``) expands into one configuration per
value (the product when several options are swept), each with its own column
label (``"<label> lam=0.5"``). A preset may declare an ``[ablation]``: the
options of one base column varied one at a time; every ablation column pins
all the ablated options (the base values except the one it varies), so a
table cell matches the records of exactly one configuration.
"""

from __future__ import annotations

import dataclasses
import itertools
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
    strategy_options: tuple = ()  # (key, value) pairs this column fixes (sweeps and ablations)
    adapter_options: tuple = ()
    note: str = ""  # shown as "label†" in tables with the note in the caption (e.g. a reconstructed method)

    def matches(self, record: dict) -> bool:
        """Whether a run record has every option value this column fixes."""
        cfg = record.get("config", {})
        for kind, fixed in (("strategy_options", self.strategy_options), ("adapter_options", self.adapter_options)):
            have = cfg.get(kind, {})
            if any(k not in have or not _same_value(have[k], v) for k, v in fixed):
                return False
        return True


def _same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _fmt_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def sweep_values(value, default=None) -> list:
    """The values an option takes: a list or tuple is a sweep; ``"true,false"`` for a boolean option too."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise AlbenchError("An option sweep needs at least one value, got an empty list.")
        return list(value)
    if isinstance(value, str) and "," in value and isinstance(default, bool):
        out = []
        for part in value.split(","):
            p = part.strip().lower()
            if p not in ("true", "false"):
                raise AlbenchError(f"Boolean option sweep {value!r}: {part.strip()!r} is not true or false.")
            out.append(p == "true")
        return out
    return [value]


def expand_sweeps(options: dict, defaults: dict) -> list[tuple[dict, tuple]]:
    """Every combination of swept values: [(options, ((key, value), ...) of the swept keys)]."""
    keys = list(options)
    values = [sweep_values(options[k], defaults.get(k)) for k in keys]
    swept = [k for k, v in zip(keys, values) if isinstance(options[k], (list, tuple)) or len(v) > 1]
    out = []
    for combo in itertools.product(*values):
        opts = dict(zip(keys, combo))
        out.append((opts, tuple((k, opts[k]) for k in swept)))
    return out


def sweep_label(base: str, swept: tuple) -> str:
    return base if not swept else f"{base} " + " ".join(f"{k}={_fmt_value(v)}" for k, v in swept)


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
    options = {k: dict(v) for k, v in s.get("options", {}).items()}
    from albench.clip.profiles import profile_for

    columns = _preset_columns(raw, options, profile_for(bb.get("arch", "toy-clip")))
    return Preset(
        name=name,
        suite=suite,
        title=raw["title"],
        paper_table=raw.get("paper_table"),
        adapter=raw["adapter"],
        adapter_title=raw.get("adapter_title", raw["adapter"]),
        backbone_title=raw.get("backbone_title", bb.get("arch", "")),
        columns=columns,
        datasets=tuple(datasets),
        paper_datasets=tuple(paper_ds),
        titles=titles,
        budgets=tuple(raw.get("budgets", (1, 2, 5))),
        seeds=tuple(raw.get("seeds", (1, 2, 3))),
        rounds=int(raw.get("rounds", 6)),
        backbone=BackboneSpec(**bb),
        options=options,
    )


def _plugin_defaults(kind: str, name: str) -> dict:
    from albench.api.plugins import ADAPTERS, STRATEGIES

    try:
        return dict((STRATEGIES if kind == "strategy" else ADAPTERS).get(name).defaults)
    except AlbenchError:
        return {}  # not installed: available_columns skips the column later


def _preset_columns(raw: dict, suite_options: dict, profile=None) -> tuple[Column, ...]:
    """The preset's columns, with option sweeps expanded and the ``[ablation]`` (if any) added."""
    out: list[Column] = []
    for c in raw["columns"]:
        strategy, adapter = c["strategy"], c.get("adapter", raw["adapter"])
        s_def, a_def = _plugin_defaults("strategy", strategy), _plugin_defaults("adapter", adapter)
        for s_opts, s_swept in expand_sweeps(dict(c.get("strategy_options", {})), s_def):
            for a_opts, a_swept in expand_sweeps(dict(c.get("adapter_options", {})), a_def):
                out.append(
                    Column(
                        sweep_label(c["label"], s_swept + a_swept),
                        strategy,
                        adapter,
                        c.get("role", "baseline"),
                        tuple(c.get("dash_budgets", ())),
                        tuple(sorted(s_opts.items())),
                        tuple(sorted(a_opts.items())),
                        c.get("note", ""),
                    )
                )
    ab = raw.get("ablation")
    if ab:
        base = next((c for c in out if c.label == ab.get("column")), None)
        if base is None:
            raise AlbenchError(
                f"[ablation] column {ab.get('column')!r} is not a column of the preset; valid: "
                f"{', '.join(c.label for c in out)}."
            )
        out.remove(base)
        varied = {"strategy": dict(ab.get("strategy_options", {})), "adapter": dict(ab.get("adapter_options", {}))}
        pinned = {}
        for kind, name, fixed in (
            ("strategy", base.strategy, base.strategy_options),
            ("adapter", base.adapter, base.adapter_options),
        ):
            defaults = _plugin_defaults(kind, name)
            for key in varied[kind]:
                if defaults and key not in defaults:
                    raise AlbenchError(
                        f"[ablation] {kind} option {key!r} is not an option of {kind} '{name}'; "
                        f"valid: {', '.join(sorted(defaults))}."
                    )
            from_profile = profile.defaults(kind, name) if profile is not None else {}  # the backbone's defaults
            value = {**defaults, **from_profile, **suite_options.get(name, {}), **dict(fixed)}
            pinned[kind] = {k: value.get(k) for k in varied[kind]}

        def column(label: str, s_over: dict, a_over: dict) -> Column:
            s_opts = {**dict(base.strategy_options), **pinned["strategy"], **s_over}
            a_opts = {**dict(base.adapter_options), **pinned["adapter"], **a_over}
            return dataclasses.replace(
                base,
                label=label,
                strategy_options=tuple(sorted(s_opts.items())),
                adapter_options=tuple(sorted(a_opts.items())),
            )

        out.append(column(base.label, {}, {}))
        for kind in ("strategy", "adapter"):
            for key, values in varied[kind].items():
                for v in sweep_values(values):
                    if _same_value(v, pinned[kind][key]):
                        continue  # the base column already has it
                    over = {key: v}
                    out.append(
                        column(
                            f"{base.label} {key}={_fmt_value(v)}",
                            over if kind == "strategy" else {},
                            over if kind == "adapter" else {},
                        )
                    )
    labels = [c.label for c in out]
    if len(set(labels)) != len(labels):
        raise AlbenchError(f"Preset columns must have distinct labels, got {labels}.")
    return tuple(out)


def available_columns(preset: Preset) -> Preset:
    """The preset without the columns whose strategy or adapter is not installed (warned once)."""
    from albench.api.plugins import ADAPTERS, STRATEGIES

    keep, skipped = [], []
    s_names, a_names = set(STRATEGIES.names()), set(ADAPTERS.names())
    for c in preset.columns:
        missing = [f"strategy '{c.strategy}'" for _ in [0] if c.strategy not in s_names] + [
            f"adapter '{c.adapter}'" for _ in [0] if c.adapter not in a_names
        ]
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
    if [v.lower() for v in values] == ["all"]:
        return list(universe)
    by_lower: dict[str, list[str]] = {}
    for u in universe:
        by_lower.setdefault(u.lower(), []).append(u)
    out = []
    for v in values:  # names match case-insensitively (CoOp, DTD) when that is unambiguous
        if v in universe:
            out.append(v)
        elif len(by_lower.get(v.lower(), [])) == 1:
            out.append(by_lower[v.lower()][0])
        else:
            raise UnknownNameError(kind, v, universe)
    return list(dict.fromkeys(out))


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


def build_grid(
    *,
    preset: str | None = None,
    suite: str = "paper",
    strategies: list[str] | None = None,
    adapters: list[str] | None = None,
    datasets: list[str] | None = None,
    seeds: list[int] | None = None,
    budgets: list[int] | None = None,
    rounds: int | None = None,
    round_fraction: float = 0.01,
    round_budget: int | None = None,
    backbone: BackboneSpec | None = None,
    strategy_options: dict | None = None,
    adapter_options: dict | None = None,
    data_root: str | None = None,
    default_strategies: list[str] | None = None,
) -> Grid:
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
        for opts, where in (
            (s_plain, "--strategy-opt"),
            (a_plain, "--adapter-opt"),
            *((v, "option") for v in list(s_scoped.values()) + list(a_scoped.values())),
        ):
            swept = [k for k, v in opts.items() if isinstance(v, (list, tuple))]
            if swept:
                raise AlbenchError(
                    f"{where} sweeps ({', '.join(swept)}) do not combine with --preset: declare them "
                    f"in the preset (column options or an [ablation]) so its tables show them."
                )
        triples = [(c.strategy, c.adapter, c.label, dict(c.strategy_options), dict(c.adapter_options)) for c in cols]
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
        triples = [(s, a, None, {}, {}) for a in a_names for s in s_names]
        p = None
    if rounds <= 0:  # before budgets are mapped onto rounds
        raise AlbenchError(f"{{field}} must be a positive integer, got {rounds}.", field="rounds")
    if len(set(seeds)) != len(seeds):
        raise AlbenchError(f"Duplicate seeds in {seeds}.")
    br = budget_rounds(budgets, round_fraction, round_budget)
    if max(br.values()) > rounds:
        b = max(br, key=br.get)
        raise AlbenchError(
            f"Budget {b:g} % needs round {br[b]}, but runs have only {rounds} round(s); "
            f"raise {{field}} or drop that budget.",
            field="rounds",
        )
    # Expand option sweeps, then validate names and options once, before anything runs: every bad value,
    # one message each.
    configs = []
    problems: list[str] = []
    for s, a, label, s_col, a_col in triples:
        s_cls, a_cls = STRATEGIES.get(s), ADAPTERS.get(a)
        for s_opts, s_swept in expand_sweeps({**_options_for(s, s_plain, s_scoped), **s_col}, s_cls.defaults):
            problems += option_problems("strategy", s, s_cls.defaults, s_opts, getattr(s_cls, "schema", None))[1]
            for a_opts, a_swept in expand_sweeps({**_options_for(a, a_plain, a_scoped), **a_col}, a_cls.defaults):
                problems += option_problems("adapter", a, a_cls.defaults, a_opts, getattr(a_cls, "schema", None))[1]
                swept = s_swept + a_swept
                configs.append((s, a, sweep_label(label or s, swept) if (label or swept) else None, s_opts, a_opts))
    if problems:
        raise InputProblems(list(dict.fromkeys(problems)))
    for name in list(s_scoped) + list(a_scoped):
        if name not in {t[0] for t in triples} | {t[1] for t in triples}:
            raise AlbenchError(f"Scoped option for '{name}', which is not in this grid.")
    specs = [
        RunSpec(s, a, d, seed, s_opts, a_opts, bspec, rounds, round_fraction, round_budget, data_root, label)
        for d in ds
        for s, a, label, s_opts, a_opts in configs
        for seed in seeds
    ]
    seen = set()
    unique = []
    for sp in specs:  # the same run may back two columns (never happens in the shipped presets)
        from albench.engine.protocol import canonical

        key = (
            sp.strategy,
            sp.adapter,
            sp.dataset,
            sp.seed,
            canonical(sp.strategy_options),
            canonical(sp.adapter_options),
        )
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
        run = store.resolve(spec, results_dir, ws)
    except AlbenchError as exc:
        return RunState(spec, "unresolved", None, str(exc))
    loc, config = run.location, run.config
    if loc.read() is not None:
        return RunState(spec, "done", loc.record)
    # A run recorded on another device type or precision (a GPU cluster seen from a CPU login node) is done
    # there, under its own hash; say so rather than calling it pending.
    from albench.clip.compute import compute_variants
    from albench.engine.protocol import config_hash

    for variant in compute_variants():
        if variant != config.get("compute"):
            other = store.location(results_dir, spec.dataset, spec.slug(), config_hash({**config, "compute": variant}))
            if other.read() is not None:
                own = config.get("compute", {})
                return RunState(
                    spec,
                    "done",
                    other.record,
                    f"recorded with {variant['device']}/{variant['precision']}, "
                    f"not {own.get('device')}/{own.get('precision')} as asked",
                )
    if loc.running():
        return RunState(spec, "running", loc.record)
    err = loc.failure_error()
    if err is not None:
        return RunState(spec, "failed", loc.record, err)
    return RunState(spec, "pending", loc.record)


def grid_status(grid: Grid, results_dir: str | Path, ws) -> list[RunState]:
    return [run_state(sp, results_dir, ws) for sp in grid.specs]
