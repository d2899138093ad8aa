"""Command line: ``albench list | run | status | table | report | toy | bench``.

User errors (``AlbenchError``) print one clear message and exit 2; ``--debug``
shows the traceback. Subcommand groups added by other modules register here.
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path

import click

from albench.api.errors import AlbenchError

from albench.engine.launchers import BATCH_RUNS  # noqa: E402 - the default of --batch-runs

DEMO_STRATEGIES = ("random", "entropy", "coreset", "badge")
DEMO_DATASET = "digits"


class AlbenchGroup(click.Group):
    """Turns AlbenchError into a one-line message and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AlbenchError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            from albench.cli.fields import message

            for problem in getattr(exc, "problems", None) or [exc]:  # a preflight names every problem
                text = (
                    problem.text()
                    if hasattr(problem, "text")
                    else (message(problem) if isinstance(problem, AlbenchError) else str(problem))
                )
                click.echo(f"error: {text}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=AlbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="albench")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """albench: active learning with CLIP under tiny label budgets."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def split_list(value: str | None) -> list[str]:
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")]
    if not value.strip() or any(not v for v in items):
        raise AlbenchError(f"Empty item in list {value!r}; use comma-separated names like 'random,entropy'.")
    return items


def parse_seeds(value: str) -> list[int]:
    """ "1,2,3", "1-3" or "1-3,7" -> [1, 2, 3(, 7)]; ranges are inclusive."""
    out = []
    for s in split_list(value):
        m = re.fullmatch(r"(-?\d+)\s*-\s*(-?\d+)", s)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise AlbenchError(f"Seed range '{s}' is empty; write it low-high, e.g. 1-3 (got --seeds {value!r}).")
            out.extend(range(lo, hi + 1))
            continue
        try:
            out.append(int(s))
        except ValueError:
            raise AlbenchError(f"Seed '{s}' is not an integer (got --seeds {value!r}).") from None
    return out


@main.command("list")
@click.option("--verbose", "-v", is_flag=True, help="Show each plugin's entry point, distribution and version.")
@click.option(
    "--options",
    "options_of",
    default=None,
    metavar="NAME",
    help="Print the options of strategy or adapter NAME: type, valid values, default.",
)
def list_cmd(verbose: bool, options_of: str | None) -> None:
    """List registered strategies, adapters and datasets (without importing plugins)."""
    from albench.api.plugins import ADAPTERS, DATASETS, STRATEGIES
    from albench.data.tasks import dataset_names

    if options_of is not None:
        _print_options(options_of)
        return
    dataset_names()  # a clear error when the installed metadata predates the datasets group
    for title, reg in (("strategies", STRATEGIES), ("adapters", ADAPTERS), ("datasets", DATASETS)):
        click.echo(f"{title}:")
        for info in reg.describe():
            extra = f"  {info.target}  [{info.distribution} {info.version}]" if verbose else ""
            click.echo(f"  {info.name}{extra}")


def _print_options(name: str) -> None:
    """One line per option of the strategy and/or adapter called ``name`` (case-insensitive)."""
    from albench.api.errors import UnknownNameError
    from albench.api.options import schema_for
    from albench.api.plugins import ADAPTERS, STRATEGIES

    found = False
    for kind, reg in (("strategy", STRATEGIES), ("adapter", ADAPTERS)):
        match = [n for n in reg.names() if n.lower() == name.lower()]
        if not match:
            continue
        found = True
        cls = reg.get(match[0])
        schema = schema_for(cls.defaults, getattr(cls, "schema", None))
        click.echo(f"{kind} {match[0]}: {len(cls.defaults)} option(s)" + (":" if cls.defaults else ""))
        width = max((len(k) for k in cls.defaults), default=0)
        for key, default in cls.defaults.items():
            opt = schema[key]
            typ = {int: "int", float: "float", bool: "bool", str: "str"}.get(opt.type, "any")
            click.echo(f"  {key:<{width}}  {typ:<5}  default {default!r:<12}  {opt.describe()}")
    if not found:
        raise UnknownNameError("strategy or adapter", name, sorted(set(STRATEGIES.names()) | set(ADAPTERS.names())))


def _round_table(record: dict) -> str:
    lines = [
        f"{'round':>5} {'labels':>7} {'budget %':>8} {'accuracy':>8}",
        f"{0:>5} {0:>7} {0.0:>8.2f} {record['zero_shot_accuracy']:>8.2f}  (zero-shot)",
    ]
    for r in record["rounds"]:
        lines.append(f"{r['round']:>5} {r['labeled']:>7} {r['budget_pct']:>8.2f} {r['accuracy']:>8.2f}")
    return "\n".join(lines)


def _grid_options(f):
    """Options shared by ``run`` and ``status`` (both expand the same grid)."""
    opts = [
        click.option(
            "--preset", default=None, help="A paper experiment: table1, table2, table3, table4 (TOML presets)."
        ),
        click.option(
            "--suite",
            default="paper",
            show_default=True,
            help="Dataset suite for --preset: paper (real datasets) or toy (their toy stand-ins).",
        ),
        click.option(
            "--strategy",
            "strategies",
            multiple=True,
            help=f"Comma-separated strategies or 'all' [demo: {','.join(DEMO_STRATEGIES)}]; repeatable "
            "(the lists add up); with --preset, filters its columns (strategy or column label).",
        ),
        click.option(
            "--adapter", "adapters", multiple=True, help="Comma-separated adapters or 'all' [coop]; repeatable."
        ),
        click.option(
            "--dataset",
            "datasets",
            multiple=True,
            help=f"Comma-separated datasets or 'all' [{DEMO_DATASET}]; repeatable; with --preset, filters "
            f"its datasets.",
        ),
        click.option(
            "--seeds",
            default=None,
            help="Comma-separated integer seeds or ranges, e.g. 1,2,3 or 1-3 [1; presets: 1,2,3].",
        ),
        click.option(
            "--budget",
            "budgets",
            default=None,
            help="Comma-separated budgets in % of the pool, tabulated from rounds of one trajectory [1,2,5].",
        ),
        click.option("--rounds", default=None, type=int, help="AL rounds per run [6]."),
        click.option(
            "--round-budget",
            default=None,
            type=int,
            help="Labels per round (default: 1 % of the pool); then --budget names rounds.",
        ),
        click.option(
            "--budget-pct", default=1.0, show_default=True, type=float, help="Labels per round as % of the pool."
        ),
        click.option(
            "--backbone", default=None, help="open_clip architecture or toy-clip [toy-clip; presets: theirs]."
        ),
        click.option("--pretrained", default=None, help="Pretrained tag, local weights file, or 'random'."),
        click.option(
            "--quick-gelu/--no-quick-gelu", default=None, help="Force QuickGELU on/off (default: from the tag)."
        ),
        click.option(
            "--allow-torchscript", is_flag=True, help="Accept an OpenAI TorchScript file (executes code in it)."
        ),
        click.option(
            "--data-root", default=None, envvar="ALBENCH_DATA", help="Root of CoOp-layout datasets [$ALBENCH_DATA]."
        ),
        click.option(
            "--allow-custom-split",
            is_flag=True,
            help="Accept dataset splits whose sizes differ from CoOp's official ones.",
        ),
        click.option(
            "--skip-corrupt-images",
            is_flag=True,
            help="Leave undecodable images out of the task (listed in the task's meta) instead of stopping.",
        ),
        click.option(
            "--dataset-opt",
            multiple=True,
            help="Dataset loader option key=value, e.g. path=DIR or template='{} texture.' (repeatable).",
        ),
        click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False)),
        click.option("--cache-dir", default=None, envvar="ALBENCH_CACHE", help="Feature cache [$ALBENCH_CACHE]."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N."),
        click.option(
            "--precision",
            default="auto",
            show_default=True,
            type=click.Choice(["auto", "fp32", "bf16"]),
            help="Backbone precision: bf16 autocast (CUDA or CPU) or fp32; auto = bf16 on CUDA, fp32 on CPU.",
        ),
        click.option(
            "--deterministic",
            is_flag=True,
            help="torch deterministic algorithms (and the cuBLAS setting CUDA needs); recorded.",
        ),
        click.option(
            "--strategy-opt",
            multiple=True,
            help="Strategy option key=value, or name:key=value for one strategy (repeatable).",
        ),
        click.option(
            "--adapter-opt",
            multiple=True,
            help="Adapter option key=value, or name:key=value for one adapter (repeatable).",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _build_grid(kw: dict):
    import warnings

    from albench.clip.backbone import BackboneSpec
    from albench.engine.grid import build_grid, load_preset
    from albench.api.options import parse_option_strings

    for key in ("strategies", "adapters", "datasets"):  # repeated options add up: --strategy a --strategy b
        if isinstance(kw.get(key), tuple):
            kw[key] = ",".join(kw[key]) if kw[key] else None
    if not str(kw.get("results_dir", "results")).strip():
        raise AlbenchError("--results-dir is empty; pass a folder, e.g. --results-dir results.")
    if not (0 < kw["budget_pct"] <= 100):
        raise AlbenchError(f"--budget-pct must be in (0, 100], got {kw['budget_pct']:g}.")
    if kw["preset"] is None and kw["suite"] != "paper":
        raise AlbenchError("--suite only applies to --preset runs.")
    bspec = None
    if kw["backbone"] or kw["pretrained"] or kw["quick_gelu"] is not None or kw["allow_torchscript"]:
        base = load_preset(kw["preset"], kw["suite"]).backbone if kw["preset"] else BackboneSpec()
        bspec = BackboneSpec(
            kw["backbone"] or base.arch,
            kw["pretrained"] or (None if kw["backbone"] else base.pretrained),
            kw["quick_gelu"],
            kw["allow_torchscript"],
        )
    budgets = None
    if kw["budgets"]:
        try:
            values = [float(b) for b in split_list(kw["budgets"])]
        except ValueError:
            raise AlbenchError(f"--budget takes numbers (percent of the pool), got {kw['budgets']!r}.") from None
        for b in values:
            if not (0 < b <= 100):  # also nan
                raise AlbenchError(
                    f"--budget {b:g} is not a budget: budgets are percentages of the pool in (0, 100] "
                    f"(e.g. --budget 1,2,5)."
                )
        budgets = [int(b) if b.is_integer() else b for b in values]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = build_grid(
            preset=kw["preset"],
            suite=kw["suite"],
            strategies=split_list(kw["strategies"]) or None,
            adapters=split_list(kw["adapters"]) or None,
            datasets=split_list(kw["datasets"]) or None,
            seeds=parse_seeds(kw["seeds"]) if kw["seeds"] is not None else None,
            budgets=budgets,
            rounds=kw["rounds"],
            round_fraction=kw["budget_pct"] / 100.0,
            round_budget=kw["round_budget"],
            backbone=bspec,
            strategy_options=parse_option_strings(kw["strategy_opt"]),
            adapter_options=parse_option_strings(kw["adapter_opt"]),
            data_root=kw["data_root"],
            default_strategies=None if kw["strategies"] else _demo_strategies(),
        )
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    dataset_options = parse_option_strings(kw["dataset_opt"])
    if kw["allow_custom_split"]:
        dataset_options["allow_custom_split"] = True
    if kw["skip_corrupt_images"]:
        dataset_options["skip_corrupt"] = True
    if dataset_options:
        import dataclasses

        grid.specs = [dataclasses.replace(s, dataset_options=dict(dataset_options)) for s in grid.specs]
    if not grid.specs:
        raise AlbenchError("The grid is empty (no registered strategy/adapter matches).")
    return grid


def _demo_strategies() -> list[str]:
    from albench.api.plugins import STRATEGIES

    return [s for s in DEMO_STRATEGIES if s in STRATEGIES.names()]


def _preflight(grid, kw: dict, workspace=None, skip: tuple = ()) -> None:
    """The one preflight (``albench.engine.preflight``): every problem of the grid, before any run."""
    from albench.engine.preflight import CHECKS, GridContext, PreflightError, preflight

    ctx = GridContext.from_grid(
        grid,
        kw.get("results_dir"),
        kw.get("cache_dir"),
        kw.get("device", "auto"),
        kw.get("precision", "auto"),
        workspace=workspace,
    )
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problems = preflight(ctx, [c for c in CHECKS if c.__name__ not in skip])
    for w in caught:  # odd but valid inputs, e.g. class names that differ only by case
        click.echo(f"warning: {w.message}", err=True)
    if problems:
        raise PreflightError(problems)


@main.command("run")
@_grid_options
@click.option("--overwrite", is_flag=True, help="Redo runs whose record exists.")
@click.option("--launcher", default="local", show_default=True, help="local or slurm.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="local: worker processes (with --device auto on a GPU machine, one per visible GPU).",
)
@click.option(
    "--batch-runs",
    default=BATCH_RUNS,
    show_default=True,
    type=click.IntRange(1, 64),
    help="local: up to this many runs of one column and dataset (its seeds) run in lock step and train "
    "together when their adapter supports it (CoOp: one text-tower call per step); records equal "
    "running them one by one. 1 = one run at a time.",
)
@click.option("--slurm-partition", default=None, help="slurm: partition.")
@click.option("--slurm-time", default=240, show_default=True, type=int, help="slurm: time limit per run (minutes).")
@click.option("--slurm-gpus", default=1, show_default=True, type=int, help="slurm: GPUs per run.")
@click.option("--slurm-cpus", default=4, show_default=True, type=int, help="slurm: CPUs per run.")
@click.option("--slurm-mem-gb", default=None, type=float, help="slurm: memory per run (GB).")
@click.option("--slurm-parallelism", default=64, show_default=True, type=int, help="slurm: max array tasks at once.")
@click.option(
    "--slurm-executor",
    type=click.Choice(["slurm", "local", "debug"]),
    default="slurm",
    show_default=True,
    help="submitit executor; 'local' runs the job array as local processes (testing).",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="slurm: wait for the jobs and summarise.")
@click.option(
    "--details/--no-details", default=None, help="Print each finished run's round table [on for grids of up to 4 runs]."
)
@click.option(
    "--threads",
    default=None,
    type=int,
    envvar="ALBENCH_THREADS",
    help="CPU threads per run [1; $ALBENCH_THREADS]. The same in every worker, so results do not depend on "
    "--workers; a count other than 1 enters the run's identity.",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
@click.option(
    "--log-to",
    "log_to",
    default=None,
    help="Experiment trackers fed each round: tensorboard, mlflow, wandb (comma-separated; optional "
    "extras; local/offline unless configured; see albench.engine.trackers). Local launcher only.",
)
def run_cmd(
    threads,
    overwrite,
    launcher,
    workers,
    batch_runs,
    slurm_partition,
    slurm_time,
    slurm_gpus,
    slurm_cpus,
    slurm_mem_gb,
    slurm_parallelism,
    slurm_executor,
    wait,
    details,
    progress,
    log_to,
    **kw,
) -> None:
    """Run a grid of AL trajectories (strategy x adapter x dataset x seed, or a --preset).

    Runs whose record exists are skipped, so rerunning a killed grid finishes only what is
    missing. A failing run leaves a failure record under results/failed/ and the grid goes on;
    the command then exits 1.
    """
    from tqdm.auto import tqdm

    from albench.engine.grid import budget_rounds
    from albench.engine.launchers import LAUNCHERS, Interrupted, LaunchRequest, SlurmOptions, summarise_results
    from albench.engine.protocol import Workspace

    from albench.api.errors import UnknownNameError

    if launcher not in LAUNCHERS:
        raise UnknownNameError("launcher", launcher, LAUNCHERS.names())
    launch = LAUNCHERS.get(launcher)
    if threads is not None:  # for this command only (restored on exit; spawned workers inherit it)
        import os

        from albench.engine.threads import ENV_THREADS, MAX_THREADS

        if not 1 <= threads <= MAX_THREADS:
            raise AlbenchError(f"--threads must be an integer in 1..{MAX_THREADS}, got {threads}.")
        old = os.environ.get(ENV_THREADS)
        os.environ[ENV_THREADS] = str(threads)
        click.get_current_context().call_on_close(
            lambda: os.environ.__setitem__(ENV_THREADS, old) if old is not None else os.environ.pop(ENV_THREADS, None)
        )
    from albench.engine.trackers import check_trackers

    trackers = check_trackers(split_list(log_to) if log_to else ())
    if trackers and launcher != "local":
        raise AlbenchError(
            "--log-to works with --launcher local; slurm jobs run elsewhere (log from their records "
            "with `albench export`)."
        )
    grid = _build_grid(kw)
    specs = grid.specs
    first = specs[0]
    br = budget_rounds(grid.budgets, first.round_fraction, first.round_budget)
    show_details = details if details is not None else len(specs) <= 4
    n_ds = len({s.dataset for s in specs})
    click.echo(
        f"grid: {len(specs)} run(s) over {n_ds} dataset(s)"
        + (f" [preset {grid.preset.slug}]" if grid.preset else "")
        + f", launcher {launcher}"
        + (f" x {workers} workers" if launcher == "local" and workers > 1 else "")
    )

    def report(res) -> None:
        tqdm.write(res.line(br))
        if show_details and res.record is not None and res.status == "done":
            tqdm.write(_round_table(res.record))
            tqdm.write(f"record: {res.path}")

    results_dir = kw["results_dir"]
    ws = (
        Workspace(
            kw["cache_dir"],
            device=kw["device"],
            progress=progress,
            precision=kw["precision"],
            deterministic=kw["deterministic"],
        )
        if launcher == "local" and workers == 1
        else None
    )
    # exit 2 with every problem, nothing written; slurm nodes have the GPUs the submitting host may lack
    _preflight(grid, kw, workspace=ws, skip=("check_device",) if launcher == "slurm" else ())
    request = LaunchRequest(
        specs,
        results_dir,
        overwrite=overwrite,
        cache_dir=kw["cache_dir"],
        device=kw["device"],
        precision=kw["precision"],
        deterministic=kw["deterministic"],
        progress=progress,
        report=report,
        echo=click.echo,
        workers=workers,
        batch_runs=batch_runs,
        ws_factory=(lambda: ws) if ws else None,
        log_to=trackers,
        slurm=SlurmOptions(
            slurm_executor,
            slurm_partition,
            slurm_time,
            slurm_gpus,
            slurm_cpus,
            slurm_mem_gb,
            slurm_parallelism,
            None,
            wait,
        ),
    )
    try:
        results = launch(request)
    except Interrupted as stop:
        done = [r for r in stop.results if r.status in ("done", "skipped")]
        click.echo(
            f"\ninterrupted: {len(done)} of {len(specs)} run(s) finished (records written atomically), "
            f"{len(stop.not_finished)} not finished; nothing partial was written. Run the same command "
            f"again to finish the rest.",
            err=True,
        )
        for r in done:
            click.echo(f"  finished: {r.name}  [{r.path}]", err=True)
        for sp in stop.not_finished:
            click.echo(f"  not finished: {sp.dataset} {sp.slug()}", err=True)
        sys.exit(130)
    counts = summarise_results(results)
    failed = [r for r in results if r.status == "failed"]
    parts = [f"{counts.get('done', 0)} run(s) done", f"{counts.get('skipped', 0)} skipped", f"{len(failed)} failed"]
    if counts.get("busy"):
        parts.append(f"{counts['busy']} running in another process")
    if counts.get("submitted"):
        parts.append(f"{counts['submitted']} submitted (not waited for)")
    click.echo(f"\n{', '.join(parts)}. Results in {Path(results_dir).resolve()}")
    if failed:
        click.echo("failures:", err=True)
        for r in failed:
            click.echo(f"  {r.name}: {r.error}  [{r.failure_record}]", err=True)
        sys.exit(1)


@main.command("status")
@_grid_options
@click.option("--list", "list_runs", is_flag=True, help="One line per run with its state.")
def status_cmd(list_runs, **kw) -> None:
    """Show done / failed / running / pending runs of a grid (same options as `run`)."""
    from albench.engine.grid import grid_status
    from albench.engine.protocol import Workspace

    grid = _build_grid(kw)
    ws = Workspace(kw["cache_dir"], device=kw["device"], progress=False, precision=kw["precision"])
    _preflight(
        grid, kw, workspace=ws, skip=("check_results_dir", "check_cache_dir", "check_run_folders")
    )  # reading needs no write access
    states = grid_status(grid, kw["results_dir"], ws)
    counts: dict = {}
    for st in states:
        counts[st.state] = counts.get(st.state, 0) + 1
    title = f"preset {grid.preset.slug}" if grid.preset else "grid"
    click.echo(
        f"{title}: {len(states)} run(s): "
        + ", ".join(
            f"{counts.get(k, 0)} {k}"
            for k in ("done", "failed", "running", "pending", "unresolved")
            if counts.get(k) or k in ("done", "failed", "pending")
        )
    )
    for st in states:
        if list_runs or st.state in ("failed", "unresolved") or st.detail:
            detail = f"  {st.detail}" if st.detail else ""
            click.echo(f"  {st.state:<10} {st.spec.dataset} {st.spec.slug()}{detail}")
    for note in grid.notes:
        click.echo(f"  note: {note}")


def parse_budgets(value: str | None) -> list[int] | None:
    """--budget 1,2,5 -> [1, 2, 5] (whole percentages of the pool)."""
    if not value:
        return None
    try:
        return [int(b) for b in split_list(value)]
    except ValueError:
        raise AlbenchError(f"--budget takes whole percentages, got {value!r}.") from None


def config_option(f):
    return click.option(
        "--config",
        "configs",
        multiple=True,
        metavar="ID",
        help="In cells with several configurations, show this config id (prefix; repeatable). "
        "Default: the configuration with the most seeds, then the newest.",
    )(f)


@main.command("table")
@click.option("--preset", default=None, help="Render a paper table layout: table1 .. table4.")
@click.option("--suite", default="paper", show_default=True, help="paper or toy (with --preset).")
@click.option(
    "--budget",
    "budgets",
    default=None,
    help="Comma-separated budgets (%) to show [the preset's: 1,2,5; without --preset: every round].",
)
@click.option("--seeds", default=None, help="Only these seeds [the preset's: 1,2,3; without --preset: all].")
@click.option(
    "--compare",
    type=click.Choice(["paper"]),
    default=None,
    help="Put the paper's published numbers beside ours, with the difference (--suite paper only).",
)
@config_option
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Where the Markdown, LaTeX and CSV files go [with --preset: reports; without: only printed].",
)
@click.option(
    "--metric",
    default="accuracy",
    show_default=True,
    help="What the cells show: accuracy, balanced_accuracy, max_softmax_auroc, entropy_auroc, margin_auroc, "
    "pclean_auroc, pseudo_label_precision, pseudo_label_size, pool_accuracy, fallback_picks "
    "(diagnostics: docs/records.md).",
)
def table_cmd(preset, suite, budgets, seeds, compare, configs, results_dir, out, metric) -> None:
    """Mean ± std (sample std over seeds) tables, in the paper's layout with --preset.

    Writes Markdown, LaTeX (booktabs) and CSV into --out and prints the Markdown. Each cell
    holds one configuration; when several exist, the choice and what differs are listed.
    """
    from albench.reporting.mechanism import check_metric
    from albench.reporting.tables import write_preset_tables, write_simple_table

    check_metric(metric)

    budget_list = parse_budgets(budgets)
    seed_list = parse_seeds(seeds) if seeds else None
    if preset is None:
        if compare:
            raise AlbenchError("--compare paper needs --preset (the paper's tables are table1 .. table4).")
        if suite != "paper":
            raise AlbenchError("--suite only applies to --preset tables.")
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            written, text = write_simple_table(
                results_dir, out, budgets=budget_list, seeds=seed_list, configs=configs, metric=metric
            )
        for w in caught:  # unreadable records
            click.echo(f"warning: {w.message}", err=True)
        click.echo(text)
        if written:
            click.echo("\nwrote " + ", ".join(str(p) for p in written))
        return
    written, markdown = write_preset_tables(
        preset,
        suite,
        results_dir,
        out or "reports",
        budgets=budget_list,
        seeds=seed_list,
        compare=compare,
        configs=configs,
        metric=metric,
    )
    click.echo(markdown)
    click.echo("\nwrote " + ", ".join(str(p) for p in written))


@main.command("report")
@config_option
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
def report_cmd(configs, results_dir, out) -> None:
    """Write reports/index.html: accuracy-vs-budget curves, tables and run metadata (static)."""
    from albench.reporting.report import LAST_WARNINGS, write_report

    path = write_report(results_dir, out, configs)
    for w in LAST_WARNINGS:  # also listed on the page
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {path}")


@main.command("bench")
@click.option("--section", "sections", default=None, help="Comma-separated sections (default: all).")
@click.option("--quick/--full", default=True, show_default=True, help="Quick sizes (CI machine) or full sizes.")
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option("--gpu", is_flag=True, help="Run the one-shot GPU benchmark instead (writes bench_gpu.json/.md).")
@click.option("--dry-run", is_flag=True, help="With --gpu: tiny sizes on the CPU (writes bench_gpu_dryrun.json/.md).")
@click.option(
    "--stability", is_flag=True, help="Run each section twice in a row; report whether every ratio agrees within ±15 %."
)
def bench_cmd(sections, quick, out, gpu, dry_run, stability) -> None:
    """Measure speed and memory; write reports/bench.json and reports/bench.md."""
    from albench.bench import run_sections

    if dry_run and not gpu:
        raise AlbenchError("--dry-run only applies to --gpu.")
    if gpu:
        from albench.bench.gpu import run_gpu

        res = run_gpu(dry_run=dry_run, out_dir=out)
        stem = "bench_gpu_dryrun" if dry_run else "bench_gpu"
        click.echo(
            f"wrote {Path(out) / (stem + '.json')} and {Path(out) / (stem + '.md')} in {res['wall_s']} s; "
            f"Table 1 projected {res['targets']['table1_projected_min']:.1f} min"
            f"{' (dry run: meaningless)' if dry_run else ''}"
        )
        return

    if stability and gpu:
        raise AlbenchError("--stability applies to the CPU sections, not --gpu.")
    result = run_sections(split_list(sections) if sections else None, quick, Path(out), stability=stability)
    click.echo(f"wrote {Path(out) / 'bench.json'} and {Path(out) / 'bench.md'} ({', '.join(result['sections'])})")


# Command groups contributed by other modules (imported last: they import this module's helpers).
from albench.cli.compare import compare_cmd  # noqa: E402
from albench.cli.data import data_group  # noqa: E402
from albench.cli.doctor import doctor_cmd  # noqa: E402
from albench.cli.records import diff_cmd, export_cmd  # noqa: E402
from albench.cli.toy import toy_group  # noqa: E402

for _command in (data_group, compare_cmd, export_cmd, diff_cmd, doctor_cmd, toy_group):
    main.add_command(_command)


if __name__ == "__main__":
    main()
