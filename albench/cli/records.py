"""`albench export` and `albench diff`: run records as flat files, and what differs between two runs."""

from __future__ import annotations

import click

from albench.reporting.export import FORMATS, LEVELS


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="csv or parquet [from the --out suffix; else csv].",
)
@click.option(
    "--level",
    type=click.Choice(LEVELS),
    default="rounds",
    show_default=True,
    help="One row per (run, round) or per run.",
)
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="File to write [reports/records.<format>].")
def export_cmd(fmt, level, results_dir, out) -> None:
    """Every run record as one flat table (CSV or Parquet), with config ids, options and provenance."""
    from pathlib import Path

    from albench.reporting.export import export

    if out is None:
        out = Path("reports") / f"records.{fmt or 'csv'}"
    path, n = export(results_dir, out, fmt or (None if Path(out).suffix else "csv"), level)
    click.echo(f"wrote {path} ({n} rows, one per {'run' if level == 'runs' else '(run, round)'})")


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
def diff_cmd(run_a, run_b, results_dir) -> None:
    """Which options differ between two runs (record files, run ids, or prefixes of run ids or config hashes)."""
    from albench.reporting.rundiff import diff_text, find_record

    _, a = find_record(run_a, results_dir)
    _, b = find_record(run_b, results_dir)
    click.echo(diff_text(a, b))
