"""Command line: ``albench list | run | status | table | report | toy | bench``.

User errors (``AlbenchError``) print one clear message and exit 2; ``--debug``
shows the traceback. Subcommand groups added by other modules register here.
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from albench.api.errors import AlbenchError

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
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=AlbenchGroup)
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
    out = []
    for s in split_list(value):
        try:
            out.append(int(s))
        except ValueError:
            raise AlbenchError(f"Seed '{s}' is not an integer (got --seeds {value!r}).") from None
    return out


@main.command("list")
@click.option("--verbose", "-v", is_flag=True, help="Show each plugin's entry point, distribution and version.")
def list_cmd(verbose: bool) -> None:
    """List registered strategies, adapters and datasets (without importing plugins)."""
    from albench.api.plugins import ADAPTERS, STRATEGIES

    for title, reg in (("strategies", STRATEGIES), ("adapters", ADAPTERS)):
        click.echo(f"{title}:")
        for info in reg.describe():
            extra = f"  {info.target}  [{info.distribution} {info.version}]" if verbose else ""
            click.echo(f"  {info.name}{extra}")
    from albench.data.tasks import task_names

    click.echo("datasets:")
    for name in task_names():
        click.echo(f"  {name}")


def _round_table(record: dict) -> str:
    lines = [f"{'round':>5} {'labels':>7} {'budget %':>8} {'accuracy':>8}",
             f"{0:>5} {0:>7} {0.0:>8.2f} {record['zero_shot_accuracy']:>8.2f}  (zero-shot)"]
    for r in record["rounds"]:
        lines.append(f"{r['round']:>5} {r['labeled']:>7} {r['budget_pct']:>8.2f} {r['accuracy']:>8.2f}")
    return "\n".join(lines)


def _grid_options(f):
    """Options shared by ``run`` and ``status`` (both expand the same grid)."""
    opts = [
        click.option("--preset", default=None, help="A paper experiment: table1, table2, table3, table4 (TOML presets)."),
        click.option("--suite", default="paper", show_default=True,
                     help="Dataset suite for --preset: paper (real datasets) or toy (their toy stand-ins)."),
        click.option("--strategy", "strategies", default=None,
                     help=f"Comma-separated strategies or 'all' [demo: {','.join(DEMO_STRATEGIES)}]; "
                          "with --preset, filters its columns (strategy or column label)."),
        click.option("--adapter", "adapters", default=None, help="Comma-separated adapters or 'all' [coop]."),
        click.option("--dataset", "datasets", default=None,
                     help=f"Comma-separated datasets or 'all' [{DEMO_DATASET}]; with --preset, filters its datasets."),
        click.option("--seeds", default=None, help="Comma-separated integer seeds [1; presets: 1,2,3]."),
        click.option("--budget", "budgets", default=None,
                     help="Comma-separated budgets in %% of the pool, tabulated from rounds of one trajectory [1,2,5]."),
        click.option("--rounds", default=None, type=int, help="AL rounds per run [6]."),
        click.option("--round-budget", default=None, type=int,
                     help="Labels per round (default: 1 %% of the pool); then --budget names rounds."),
        click.option("--budget-pct", default=1.0, show_default=True, type=float, help="Labels per round as %% of the pool."),
        click.option("--backbone", default=None, help="open_clip architecture or toy-clip [toy-clip; presets: theirs]."),
        click.option("--pretrained", default=None, help="Pretrained tag, local weights file, or 'random'."),
        click.option("--quick-gelu/--no-quick-gelu", default=None, help="Force QuickGELU on/off (default: from the tag)."),
        click.option("--allow-torchscript", is_flag=True, help="Accept an OpenAI TorchScript file (executes code in it)."),
        click.option("--data-root", default=None, envvar="ALBENCH_DATA", help="Root of CoOp-layout datasets [$ALBENCH_DATA]."),
        click.option("--allow-custom-split", is_flag=True,
                     help="Accept dataset splits whose sizes differ from CoOp's official ones."),
        click.option("--skip-corrupt-images", is_flag=True,
                     help="Leave undecodable images out of the task (listed in the task's meta) instead of stopping."),
        click.option("--dataset-opt", multiple=True,
                     help="Dataset loader option key=value, e.g. path=DIR or template='{} texture.' (repeatable)."),
        click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False)),
        click.option("--cache-dir", default=None, envvar="ALBENCH_CACHE", help="Feature cache [$ALBENCH_CACHE]."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N."),
        click.option("--strategy-opt", multiple=True,
                     help="Strategy option key=value, or name:key=value for one strategy (repeatable)."),
        click.option("--adapter-opt", multiple=True,
                     help="Adapter option key=value, or name:key=value for one adapter (repeatable)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _build_grid(kw: dict):
    import warnings

    from albench.clip.backbone import BackboneSpec
    from albench.engine.grid import build_grid, load_preset
    from albench.api.options import parse_option_strings

    if not (0 < kw["budget_pct"] <= 100):
        raise AlbenchError(f"--budget-pct must be in (0, 100], got {kw['budget_pct']:g}.")
    if kw["preset"] is None and kw["suite"] != "paper":
        raise AlbenchError("--suite only applies to --preset runs.")
    bspec = None
    if kw["backbone"] or kw["pretrained"] or kw["quick_gelu"] is not None or kw["allow_torchscript"]:
        base = load_preset(kw["preset"], kw["suite"]).backbone if kw["preset"] else BackboneSpec()
        bspec = BackboneSpec(kw["backbone"] or base.arch, kw["pretrained"] or (None if kw["backbone"] else base.pretrained),
                             kw["quick_gelu"], kw["allow_torchscript"])
    budgets = None
    if kw["budgets"]:
        try:
            budgets = [float(b) if "." in b else int(b) for b in split_list(kw["budgets"])]
        except ValueError:
            raise AlbenchError(f"--budget takes numbers (percent of the pool), got {kw['budgets']!r}.") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = build_grid(preset=kw["preset"], suite=kw["suite"],
                          strategies=split_list(kw["strategies"]) or None, adapters=split_list(kw["adapters"]) or None,
                          datasets=split_list(kw["datasets"]) or None,
                          seeds=parse_seeds(kw["seeds"]) if kw["seeds"] is not None else None, budgets=budgets,
                          rounds=kw["rounds"], round_fraction=kw["budget_pct"] / 100.0, round_budget=kw["round_budget"],
                          backbone=bspec, strategy_options=parse_option_strings(kw["strategy_opt"]),
                          adapter_options=parse_option_strings(kw["adapter_opt"]), data_root=kw["data_root"],
                          default_strategies=None if kw["strategies"] else _demo_strategies())
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


def _check_writable(results_dir: Path) -> None:
    """Fail before any run when the results directory cannot be written (nothing is created)."""
    import os

    probe = results_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise AlbenchError(f"Cannot write results to {results_dir}: {probe} is not a directory. Pass --results-dir "
                           f"with a writable directory.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise AlbenchError(f"Cannot write results to {results_dir}: {probe} is not writable. Pass --results-dir "
                           f"with a writable directory.")


def _check_data_layouts(specs) -> None:
    """Fail before any run (nothing written) when a CoOp dataset's folder or split file is missing."""
    from albench.data.datasets.coop import COOP_SPLITS, check_layout

    for name, root in dict.fromkeys((s.dataset, s.data_root) for s in specs):
        if name in COOP_SPLITS:
            check_layout(name, root)


@main.command("run")
@_grid_options
@click.option("--overwrite", is_flag=True, help="Redo runs whose record exists.")
@click.option("--launcher", default="local", show_default=True, help="local or slurm.")
@click.option("--workers", default=1, show_default=True, type=int,
              help="local: worker processes (with --device auto on a GPU machine, one per visible GPU).")
@click.option("--slurm-partition", default=None, help="slurm: partition.")
@click.option("--slurm-time", default=240, show_default=True, type=int, help="slurm: time limit per run (minutes).")
@click.option("--slurm-gpus", default=1, show_default=True, type=int, help="slurm: GPUs per run.")
@click.option("--slurm-cpus", default=4, show_default=True, type=int, help="slurm: CPUs per run.")
@click.option("--slurm-mem-gb", default=None, type=float, help="slurm: memory per run (GB).")
@click.option("--slurm-parallelism", default=64, show_default=True, type=int, help="slurm: max array tasks at once.")
@click.option("--slurm-executor", type=click.Choice(["slurm", "local", "debug"]), default="slurm", show_default=True,
              help="submitit executor; 'local' runs the job array as local processes (testing).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="slurm: wait for the jobs and summarise.")
@click.option("--details/--no-details", default=None,
              help="Print each finished run's round table [on for grids of up to 4 runs].")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
def run_cmd(overwrite, launcher, workers, slurm_partition, slurm_time, slurm_gpus, slurm_cpus, slurm_mem_gb,
            slurm_parallelism, slurm_executor, wait, details, progress, **kw) -> None:
    """Run a grid of AL trajectories (strategy x adapter x dataset x seed, or a --preset).

    Runs whose record exists are skipped, so rerunning a killed grid finishes only what is
    missing. A failing run leaves a failure record under results/failed/ and the grid goes on;
    the command then exits 1.
    """
    from tqdm.auto import tqdm

    from albench.engine.grid import budget_rounds
    from albench.engine.launchers import Interrupted, SlurmOptions, run_local, run_slurm, summarise_results
    from albench.engine.protocol import Workspace

    from albench.api.errors import UnknownNameError
    from albench.engine.launchers import LAUNCHERS

    if launcher not in LAUNCHERS:
        raise UnknownNameError("launcher", launcher, LAUNCHERS)
    grid = _build_grid(kw)
    specs = grid.specs
    first = specs[0]
    br = budget_rounds(grid.budgets, first.round_fraction, first.round_budget)
    show_details = details if details is not None else len(specs) <= 4
    n_ds = len({s.dataset for s in specs})
    click.echo(f"grid: {len(specs)} run(s) over {n_ds} dataset(s)"
               + (f" [preset {grid.preset.slug}]" if grid.preset else "") + f", launcher {launcher}"
               + (f" x {workers} workers" if launcher == "local" and workers > 1 else ""))

    def report(res) -> None:
        tqdm.write(res.line(br))
        if show_details and res.record is not None and res.status == "done":
            tqdm.write(_round_table(res.record))
            tqdm.write(f"record: {res.path}")

    results_dir = kw["results_dir"]
    _check_writable(Path(results_dir))
    _check_data_layouts(specs)
    if launcher == "local":
        try:
            results = run_local(specs, results_dir, ws_factory=lambda: Workspace(kw["cache_dir"], device=kw["device"], progress=progress),
                                workers=workers, overwrite=overwrite, cache_dir=kw["cache_dir"], device=kw["device"],
                                rounds=first.rounds, report=report, progress=progress)
        except Interrupted as stop:
            done = [r for r in stop.results if r.status in ("done", "skipped")]
            click.echo(f"\ninterrupted: {len(done)} of {len(specs)} run(s) finished (records written atomically), "
                       f"{len(stop.not_finished)} not finished; nothing partial was written. Run the same command "
                       f"again to finish the rest.", err=True)
            for r in done:
                click.echo(f"  finished: {r.name}  [{r.path}]", err=True)
            for sp in stop.not_finished:
                click.echo(f"  not finished: {sp.dataset} {sp.slug()}", err=True)
            sys.exit(130)
    else:
        opts = SlurmOptions(slurm_executor, slurm_partition, slurm_time, slurm_gpus, slurm_cpus, slurm_mem_gb,
                            slurm_parallelism, None, wait)
        results = run_slurm(specs, results_dir, opts, overwrite=overwrite, cache_dir=kw["cache_dir"],
                            device=kw["device"], report=report, progress=progress, echo=click.echo)
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
    states = grid_status(grid, kw["results_dir"], Workspace(kw["cache_dir"], device="cpu", progress=False))
    counts: dict = {}
    for st in states:
        counts[st.state] = counts.get(st.state, 0) + 1
    title = f"preset {grid.preset.slug}" if grid.preset else "grid"
    click.echo(f"{title}: {len(states)} run(s): " + ", ".join(
        f"{counts.get(k, 0)} {k}" for k in ("done", "failed", "running", "pending", "unresolved") if counts.get(k) or k in ("done", "failed", "pending")))
    for st in states:
        if list_runs or st.state in ("failed", "unresolved"):
            detail = f"  {st.detail}" if st.detail else ""
            click.echo(f"  {st.state:<10} {st.spec.dataset} {st.spec.slug()}{detail}")
    for note in grid.notes:
        click.echo(f"  note: {note}")


@main.command("table")
@click.option("--preset", default=None, help="Render a paper table layout: table1 .. table4.")
@click.option("--suite", default="paper", show_default=True, help="paper or toy (with --preset).")
@click.option("--budget", "budgets", default=None, help="Comma-separated budgets (%%) to show [the preset's: 1,2,5].")
@click.option("--seeds", default=None, help="Only these seeds [the preset's: 1,2,3].")
@click.option("--compare", type=click.Choice(["paper"]), default=None,
              help="Put the paper's published numbers beside ours, with the difference.")
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False),
              help="Where the Markdown, LaTeX and CSV files go.")
def table_cmd(preset, suite, budgets, seeds, compare, results_dir, out) -> None:
    """Mean ± std (sample std over seeds) tables, in the paper's layout with --preset.

    Writes Markdown, LaTeX (booktabs) and CSV into --out and prints the Markdown.
    """
    from albench.reporting.tables import simple_table, write_preset_tables

    if preset is None:
        if compare:
            raise AlbenchError("--compare paper needs --preset (the paper's tables are table1 .. table4).")
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            text = simple_table(results_dir)
        for w in caught:  # mixed configuration hashes, unreadable records
            click.echo(f"warning: {w.message}", err=True)
        click.echo(text)
        return
    budget_list = None
    if budgets:
        try:
            budget_list = [int(b) for b in split_list(budgets)]
        except ValueError:
            raise AlbenchError(f"--budget takes whole percentages, got {budgets!r}.") from None
    written, markdown = write_preset_tables(preset, suite, results_dir, out, budgets=budget_list,
                                            seeds=parse_seeds(seeds) if seeds else None, compare=compare)
    click.echo(markdown)
    click.echo("\nwrote " + ", ".join(str(p) for p in written))


@main.command("report")
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
def report_cmd(results_dir, out) -> None:
    """Write reports/index.html: accuracy-vs-budget curves, tables and run metadata (static)."""
    from albench.reporting.report import write_report

    path = write_report(results_dir, out)
    click.echo(f"wrote {path}")


@main.command("bench")
@click.option("--section", "sections", default=None, help="Comma-separated sections (default: all).")
@click.option("--quick/--full", default=True, show_default=True, help="Quick sizes (CI machine) or full sizes.")
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option("--gpu", is_flag=True, help="Run the one-shot GPU benchmark instead (writes bench_gpu.json/.md).")
@click.option("--dry-run", is_flag=True, help="With --gpu: tiny sizes on the CPU (writes bench_gpu_dryrun.json/.md).")
def bench_cmd(sections, quick, out, gpu, dry_run) -> None:
    """Measure speed and memory; write reports/bench.json and reports/bench.md."""
    from albench.bench import run_sections

    if dry_run and not gpu:
        raise AlbenchError("--dry-run only applies to --gpu.")
    if gpu:
        from albench.bench.gpu import run_gpu

        res = run_gpu(dry_run=dry_run, out_dir=out)
        stem = "bench_gpu_dryrun" if dry_run else "bench_gpu"
        click.echo(f"wrote {Path(out) / (stem + '.json')} and {Path(out) / (stem + '.md')} in {res['wall_s']} s; "
                   f"Table 1 projected {res['targets']['table1_projected_min']:.1f} min"
                   f"{' (dry run: meaningless)' if dry_run else ''}")
        return

    result = run_sections(split_list(sections) if sections else None, quick, Path(out))
    click.echo(f"wrote {Path(out) / 'bench.json'} and {Path(out) / 'bench.md'} "
               f"({', '.join(result['sections'])})")


# Command groups contributed by other modules: one line each.
from albench.cli.data import data_group; main.add_command(data_group)  # noqa: E402,E702
from albench.cli.toy import toy_group; main.add_command(toy_group)  # noqa: E402,E702


if __name__ == "__main__":
    main()
