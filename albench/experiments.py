"""The Python API: run experiments, read their records, register plugins, from a notebook or a script.

A stable façade over the engine and reporting layers; what the command line
does, as functions. Every function here takes and returns plain Python or
pandas objects, and goes through the same checks as the CLI (the grid
builder's option and name validation and the one preflight), so bad input
fails before any run with the same message.

>>> import albench.experiments as ax
>>> rec = ax.run("random", "zeroshot", "digits", rounds=2, results_dir="results")   # doctest: +SKIP
>>> rec["rounds"][-1]["accuracy"]                                                    # doctest: +SKIP
>>> df = ax.load_records("results")                                                  # doctest: +SKIP

See docs/python-api.md for a worked example (run by the test suite).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

__all__ = [
    "run",
    "run_grid",
    "load_records",
    "records",
    "table",
    "compare",
    "register_strategy",
    "register_adapter",
    "unregister",
]


def _grid(
    strategies,
    adapters,
    datasets,
    seeds,
    rounds,
    round_fraction,
    round_budget,
    backbone,
    pretrained,
    strategy_options,
    adapter_options,
    data_root,
):
    from albench.clip.backbone import BackboneSpec
    from albench.engine.grid import build_grid

    bspec = BackboneSpec(backbone, pretrained) if backbone else None
    return build_grid(
        strategies=list(strategies),
        adapters=list(adapters),
        datasets=list(datasets),
        seeds=list(seeds),
        rounds=rounds,
        round_fraction=round_fraction,
        round_budget=round_budget,
        backbone=bspec,
        strategy_options=dict(strategy_options or {}),
        adapter_options=dict(adapter_options or {}),
        data_root=data_root,
    )


def run_grid(
    strategies: Sequence[str],
    adapters: Sequence[str],
    datasets: Sequence[str],
    seeds: Sequence[int] = (1,),
    *,
    rounds: int = 6,
    round_fraction: float = 0.01,
    round_budget: int | None = None,
    backbone: str | None = None,
    pretrained: str | None = None,
    strategy_options: dict | None = None,
    adapter_options: dict | None = None,
    data_root: str | None = None,
    results_dir: str | Path = "results",
    cache_dir: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    deterministic: bool = False,
    overwrite: bool = False,
    log_to: Sequence[str] = (),
    on_round: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run every (strategy, adapter, dataset, seed) in this process and return their records.

    Runs whose record exists are read back, not rerun (``overwrite=True`` reruns them). Options
    are ``{key: value}`` or ``{"plugin:key": value}`` as ``--strategy-opt``/``--adapter-opt``;
    ``precision`` and ``deterministic`` as ``--precision``/``--deterministic`` (docs/real-clip.md).
    ``log_to`` names experiment trackers (``"tensorboard"``, ``"mlflow"``, ``"wandb"``; see
    ``albench.engine.trackers``); ``on_round(info)`` is called after each round with the round's
    entry of the record. Raises :class:`albench.api.errors.AlbenchError` for bad input (before any
    run) and for a failing run (its failure record is written under ``results_dir/failed``).
    """
    from albench.api.errors import AlbenchError
    from albench.engine.launchers import run_one
    from albench.engine.preflight import GridContext, PreflightError, preflight
    from albench.engine.protocol import Workspace
    from albench.engine.trackers import check_trackers

    trackers = check_trackers(log_to)
    grid = _grid(
        strategies,
        adapters,
        datasets,
        seeds,
        rounds,
        round_fraction,
        round_budget,
        backbone,
        pretrained,
        strategy_options,
        adapter_options,
        data_root,
    )
    ws = Workspace(cache_dir, device=device, progress=False, precision=precision, deterministic=deterministic)
    problems = preflight(GridContext.from_grid(grid, results_dir, cache_dir, device, precision, workspace=ws))
    if problems:
        raise PreflightError(problems)
    out = []
    for spec in grid.specs:
        res = run_one(spec, results_dir, ws, overwrite, on_round=on_round, log_to=trackers)
        if res.status == "failed":
            raise AlbenchError(f"{spec.dataset} {spec.slug()} failed: {res.error} (details: {res.failure_record})")
        if res.record is None:
            raise AlbenchError(f"{spec.dataset} {spec.slug()} is running in another process; try again later.")
        out.append(res.record)
    return out


def run(strategy: str, adapter: str, dataset: str, seed: int = 1, **kwargs) -> dict:
    """Run one AL trajectory and return its record (a dict; schema in docs/records.md).

    Keyword arguments are those of :func:`run_grid` (``rounds``, ``adapter_options``,
    ``results_dir``, ``log_to``, ...).
    """
    (rec,) = run_grid([strategy], [adapter], [dataset], [seed], **kwargs)
    return rec


def records(results_dir: str | Path = "results") -> list[dict]:
    """Every valid run record under ``results_dir`` (corrupt files are skipped with a warning)."""
    from albench.engine.records import iter_records

    return [rec for _, rec in iter_records(Path(results_dir))]


def load_records(source: str | Path | Iterable[dict] = "results", level: str = "rounds") -> pd.DataFrame:
    """Run records as a pandas DataFrame: one row per (run, round) (round 0 = zero-shot), or per run.

    ``source`` is a results directory or records already read. Columns include ``config_id``
    (records sharing it may be averaged), the options as JSON, accuracy, balanced accuracy,
    seconds, encoder images and the host (``albench.reporting.export.records_frame``).
    """
    from albench.reporting.export import records_frame

    return records_frame(str(source) if isinstance(source, Path) else source, level)


def table(
    preset: str,
    suite: str = "paper",
    source: str | Path | Iterable[dict] = "results",
    *,
    budgets: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    configs: Sequence[str] = (),
    compare_paper: bool = False,
) -> dict:
    """A preset's table as `albench table --preset` renders it: {"md", "tex", "frame", "extras", "warnings", ...}.

    ``frame`` is the long DataFrame (one row per dataset x budget x column: mean, std, n, seeds,
    config). One configuration per cell; ``warnings`` lists cells with several.
    """
    from albench.reporting.tables import preset_tables

    return preset_tables(preset, suite, source, budgets, seeds, "paper" if compare_paper else None, configs)


def compare(
    preset: str,
    suite: str = "paper",
    source: str | Path | Iterable[dict] = "results",
    *,
    reference: str = "Ours",
    budgets: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    configs: Sequence[str] = (),
    alpha: float = 0.05,
    metric: str = "accuracy",
):
    """`albench compare` as an object: ``.summary``, ``.cells`` (DataFrames), ``.rankings``, ``.markdown``."""
    from albench.reporting.stats import compare as _compare

    return _compare(preset, suite, source, reference, budgets, seeds, configs, alpha, metric)


def register_strategy(name: str, cls: type) -> None:
    """Make a :class:`albench.api.strategy.Strategy` subclass available under ``name`` in this process.

    For notebooks and experiments; a plugin meant for others is an entry point in its package's
    pyproject.toml (docs/plugins.md). Runs in worker processes do not see in-process plugins: use
    this module's functions, which run in this process.
    """
    from albench.api.plugins import STRATEGIES

    STRATEGIES.register(name, cls)


def register_adapter(name: str, cls: type) -> None:
    """Make a :class:`albench.api.adapter.Adapter` subclass available under ``name`` in this process."""
    from albench.api.plugins import ADAPTERS

    ADAPTERS.register(name, cls)


def unregister(kind: str, name: str) -> None:
    """Remove an in-process plugin (``kind`` = "strategy" or "adapter")."""
    from albench.api.errors import UnknownNameError
    from albench.api.plugins import ADAPTERS, STRATEGIES

    regs: dict[str, Any] = {"strategy": STRATEGIES, "adapter": ADAPTERS}
    if kind not in regs:
        raise UnknownNameError("plugin kind", kind, sorted(regs))
    regs[kind].unregister(name)
