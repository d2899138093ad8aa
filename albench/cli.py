"""Command line: ``albench list | run | table | toy``.

User errors (``AlbenchError``) print one clear message and exit 2; ``--debug``
shows the traceback. Subcommand groups added by other modules register here.
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from .errors import AlbenchError

DEMO_STRATEGIES = ("random", "entropy", "coreset", "badge")
DEMO_DATASET = "toy_textures"


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
    from .plugins import ADAPTERS, STRATEGIES

    for title, reg in (("strategies", STRATEGIES), ("adapters", ADAPTERS)):
        click.echo(f"{title}:")
        for info in reg.describe():
            extra = f"  {info.target}  [{info.distribution} {info.version}]" if verbose else ""
            click.echo(f"  {info.name}{extra}")
    from .tasks import task_names

    click.echo("datasets:")
    for name in task_names():
        click.echo(f"  {name}")


def _round_table(record: dict) -> str:
    lines = [f"{'round':>5} {'labels':>7} {'budget %':>8} {'accuracy':>8}",
             f"{0:>5} {0:>7} {0.0:>8.2f} {record['zero_shot_accuracy']:>8.2f}  (zero-shot)"]
    for r in record["rounds"]:
        lines.append(f"{r['round']:>5} {r['labeled']:>7} {r['budget_pct']:>8.2f} {r['accuracy']:>8.2f}")
    return "\n".join(lines)


@main.command("run")
@click.option("--strategy", "strategies", default=None, help=f"Comma-separated strategies [demo: {','.join(DEMO_STRATEGIES)}].")
@click.option("--adapter", "adapters", default="coop", show_default=True, help="Comma-separated adapters.")
@click.option("--dataset", "datasets", default=DEMO_DATASET, show_default=True, help="Comma-separated datasets.")
@click.option("--seeds", default="1", show_default=True, help="Comma-separated integer seeds.")
@click.option("--rounds", default=6, show_default=True, type=int, help="AL rounds per run.")
@click.option("--round-budget", default=None, type=int, help="Labels per round (default: 1 %% of the pool).")
@click.option("--budget-pct", default=1.0, show_default=True, type=float, help="Labels per round as %% of the pool.")
@click.option("--backbone", default="toy-clip", show_default=True, help="open_clip architecture or toy-clip.")
@click.option("--pretrained", default=None, help="Pretrained tag, local weights file, or 'random'.")
@click.option("--quick-gelu/--no-quick-gelu", default=None, help="Force QuickGELU on/off (default: from the tag).")
@click.option("--allow-torchscript", is_flag=True, help="Accept an OpenAI TorchScript file (executes code in it).")
@click.option("--data-root", default=None, envvar="ALBENCH_DATA", help="Root of CoOp-layout datasets [$ALBENCH_DATA].")
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--cache-dir", default=None, envvar="ALBENCH_CACHE", help="Feature cache [$ALBENCH_CACHE].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--strategy-opt", multiple=True, help="Strategy option key=value (repeatable).")
@click.option("--adapter-opt", multiple=True, help="Adapter option key=value (repeatable).")
@click.option("--overwrite", is_flag=True, help="Redo runs whose record exists.")
def run_cmd(strategies, adapters, datasets, seeds, rounds, round_budget, budget_pct, backbone, pretrained, quick_gelu,
            allow_torchscript, data_root, results_dir, cache_dir, device, strategy_opt, adapter_opt, overwrite) -> None:
    """Run AL trajectories (one per strategy x adapter x dataset x seed)."""
    from tqdm.auto import tqdm

    from .backbone import BackboneSpec
    from .options import parse_option_strings
    from .plugins import ADAPTERS, STRATEGIES
    from .protocol import RunSpec, Workspace, execute

    if strategies is None:
        names = [s for s in DEMO_STRATEGIES if s in STRATEGIES.names()]
    else:
        names = split_list(strategies)
    for s in names:
        STRATEGIES.get(s)
    adapter_names = split_list(adapters)
    for a in adapter_names:
        ADAPTERS.get(a)
    dataset_names = split_list(datasets)
    seed_list = parse_seeds(seeds)
    if not (0 < budget_pct <= 100):
        raise AlbenchError(f"--budget-pct must be in (0, 100], got {budget_pct:g}.")
    bspec = BackboneSpec(backbone, pretrained, quick_gelu, allow_torchscript)
    specs = [RunSpec(s, a, d, seed, parse_option_strings(strategy_opt), parse_option_strings(adapter_opt), bspec,
                     rounds, budget_pct / 100.0, round_budget, data_root)
             for d in dataset_names for a in adapter_names for s in names for seed in seed_list]
    for sp in specs:
        sp.validate()
    ws = Workspace(cache_dir, device=device)
    done = failed = skipped = 0
    bar = tqdm(specs, desc="runs", unit="run", disable=len(specs) == 1)
    for sp in bar:
        bar.set_postfix_str(sp.slug())
        rbar = tqdm(total=rounds, desc=f"{sp.dataset} {sp.slug()}", unit="round", leave=False)
        outcome = execute(sp, results_dir, ws, overwrite=overwrite,
                          on_round=lambda info: (rbar.update(1), rbar.set_postfix(acc=f"{info['accuracy']:.1f}")))
        rbar.close()
        if outcome.skipped:
            skipped += 1
            tqdm.write(f"skip {sp.dataset} {sp.slug()}: record exists ({outcome.path})")
            continue
        done += 1
        rec = outcome.record
        tqdm.write(f"\n{sp.dataset} | {sp.strategy} x {sp.adapter} | seed {sp.seed} | "
                   f"{rec['timing']['total_seconds']:.1f}s | image-encoder passes {rec['encoder_passes']['image_encoder_images']}")
        tqdm.write(_round_table(rec))
        tqdm.write(f"record: {outcome.path}")
    click.echo(f"\n{done} run(s) done, {skipped} skipped, {failed} failed. Results in {Path(results_dir).resolve()}")


@main.command("table")
@click.option("--results-dir", default="results", show_default=True, type=click.Path(file_okay=False))
def table_cmd(results_dir) -> None:
    """Print mean ± std (sample std over seeds) of the records in --results-dir."""
    from .tables import simple_table

    click.echo(simple_table(results_dir))


@main.group("toy")
def toy_group() -> None:
    """The embedded toy world: pretraining recipe and zero-shot figures."""


@toy_group.command("pretrain")
@click.option("--steps", default=2000, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Weights file (default: the shipped one).")
def toy_pretrain(steps: int, seed: int, out: str | None) -> None:
    """Pretrain the toy CLIP from scratch (about 15 minutes on 2 cores)."""
    from .toy.model import CARD_FILE, WEIGHTS_FILE
    from .toy.pretrain import pretrain

    w = Path(out) if out else WEIGHTS_FILE
    pretrain(steps=steps, seed=seed, out_weights=w, out_card=w.with_suffix(".json") if out else CARD_FILE)


@toy_group.command("zeroshot")
@click.option("--cache-dir", default=None, envvar="ALBENCH_CACHE")
def toy_zeroshot(cache_dir) -> None:
    """Zero-shot accuracy of the shipped toy CLIP on every toy task (the README table)."""
    from .adapter import AdapterEnv, ZeroShotClassifier, accuracy
    from .protocol import Workspace
    from .backbone import BackboneSpec
    from .toy.tasks import TOY_SUITE

    ws = Workspace(cache_dir, progress=False)
    bb = ws.backbone(BackboneSpec())
    click.echo("| task | classes | pool | test | template | zero-shot % |\n|---|---|---|---|---|---|")
    for name in TOY_SUITE:
        task = ws.task(name, None)
        zs = ZeroShotClassifier(AdapterEnv(bb, task, ws.bank(bb, task)))
        acc = accuracy(zs.predict_logits("test"), task.test.labels)
        click.echo(f"| {name} | {task.num_classes} | {len(task.pool)} | {len(task.test)} | `{task.template}` | {acc:.1f} |")


@main.command("bench")
@click.option("--section", "sections", default=None, help="Comma-separated sections (default: all).")
@click.option("--quick/--full", default=True, show_default=True, help="Quick sizes (CI machine) or full sizes.")
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
def bench_cmd(sections, quick, out) -> None:
    """Measure speed and memory; write reports/bench.json and reports/bench.md."""
    from .bench import run_sections

    result = run_sections(split_list(sections) if sections else None, quick, Path(out))
    click.echo(f"wrote {Path(out) / 'bench.json'} and {Path(out) / 'bench.md'} "
               f"({', '.join(result['sections'])})")


# Command groups contributed by other modules: one line each.


if __name__ == "__main__":
    main()
