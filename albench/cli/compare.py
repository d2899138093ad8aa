"""`albench compare`: is the reference column's lead real? (paired differences, W/T/L, ranks, CD diagrams)."""

from __future__ import annotations

import click

from albench.cli.main import config_option, parse_budgets, parse_seeds


@click.command("compare")
@click.option("--preset", required=True, help="The table whose columns are compared: table1 .. table4.")
@click.option("--suite", default="paper", show_default=True, help="paper or toy.")
@click.option("--reference", default="Ours", show_default=True, help="The column compared with every other one.")
@click.option("--budget", "budgets", default=None, help="Comma-separated budgets (%) [the preset's: 1,2,5].")
@click.option("--seeds", default=None, help="Only these seeds [the preset's: 1,2,3].")
@click.option(
    "--alpha",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    help="Significance level for W/T/L, Nemenyi and the CD diagram.",
)
@click.option(
    "--metric",
    default="accuracy",
    show_default=True,
    help="What is compared: accuracy, balanced_accuracy, or a diagnostic where higher is better "
    "(max_softmax_auroc, entropy_auroc, margin_auroc, pclean_auroc, pseudo_label_precision, pool_accuracy).",
)
@config_option
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--out",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where compare_<table>.md/.csv and the CD diagrams go.",
)
def compare_cmd(preset, suite, reference, budgets, seeds, alpha, metric, configs, results_dir, out) -> None:
    """Paired per-seed differences of --reference against every other column (bootstrap 95 % CIs, paired
    tests), win/tie/loss over datasets x budgets, average ranks with the Friedman test and Nemenyi
    critical-difference diagrams. Same cells (one configuration each) as `albench table`."""
    from albench.reporting.figures import method_colors
    from albench.reporting.stats import _posthocs, compare, write_compare

    _posthocs()  # the Nemenyi test and CD diagrams need scikit-posthocs: say so before any work

    cmp = compare(
        preset,
        suite,
        results_dir,
        reference,
        parse_budgets(budgets),
        parse_seeds(seeds) if seeds else None,
        configs,
        alpha,
        metric,
    )
    paths = write_compare(cmp, out, method_colors([c.label for c in cmp.preset.columns]))
    click.echo(cmp.markdown)
    click.echo("\nwrote " + ", ".join(str(p) for p in paths))
