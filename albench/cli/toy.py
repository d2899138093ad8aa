"""``albench toy ...``: the embedded toy world's pretraining recipe and its regime figures."""

from __future__ import annotations

import time
from pathlib import Path

import click

from albench.api.errors import AlbenchError


@click.group("toy")
def toy_group() -> None:
    """The embedded toy world: pretraining recipe and zero-shot figures."""


@toy_group.command("pretrain")
@click.option(
    "--workdir",
    required=True,
    type=click.Path(file_okay=False),
    help="Where checkpoints, the rendered corpus and log.txt go; rerunning resumes from its checkpoint.",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Weights file to write at the end (default: only WORKDIR/snapshot-*.safetensors).",
)
@click.option(
    "--steps",
    default=None,
    type=int,
    help="Total steps [recipe default]; a run may be shortened while "
    "it is before its decay phase (the last 20 %) without changing what it has done.",
)
@click.option("--corpus-size", default=None, type=int, help="Rendered images [recipe default] (small for smoke tests).")
@click.option("--threads", default=1, show_default=True, type=int, help="torch CPU threads.")
def toy_pretrain(workdir: str, out: str | None, steps: int | None, corpus_size: int | None, threads: int) -> None:
    """Pretrain the toy CLIP (resumable; about 80 minutes on one busy CPU core)."""
    import dataclasses

    import torch

    from albench.data.toy.pretrain import Recipe, pretrain

    r = Recipe()
    for name, value in (("steps", steps), ("corpus_size", corpus_size), ("threads", threads)):
        if value is not None and value <= 0:
            raise AlbenchError(f"--{name.replace('_', '-')} must be a positive integer, got {value}.")
    r = dataclasses.replace(r, **{k: v for k, v in (("steps", steps), ("corpus_size", corpus_size)) if v is not None})
    if r.corpus_size < r.batch:
        raise AlbenchError(f"--corpus-size must be at least the batch size {r.batch}, got {r.corpus_size}.")
    torch.set_num_threads(threads)
    w = Path(out) if out else None
    card = pretrain(Path(workdir), r, out_weights=w, out_card=w.with_suffix(".json") if w else None)
    click.echo(f"{'wrote ' + str(w) + '; ' if w else ''}probe zero-shot accuracy {card['probe_accuracy']}")


@toy_group.command("zeroshot")
@click.option("--backbone", default=None, help="Architecture [toy-clip]; toy-clip-v1 for the earlier model.")
@click.option("--cache-dir", default=None, envvar="ALBENCH_CACHE")
def toy_zeroshot(backbone, cache_dir) -> None:
    """Zero-shot accuracy of a shipped toy CLIP on every toy task."""
    from albench.api.adapter import AdapterEnv, ZeroShotClassifier, accuracy
    from albench.engine.protocol import Workspace
    from albench.clip.backbone import BackboneSpec
    from albench.data.toy.tasks import TOY_SUITE

    ws = Workspace(cache_dir, progress=False)
    bb = ws.backbone(BackboneSpec(backbone) if backbone else BackboneSpec())
    click.echo("| task | classes | pool | test | template | zero-shot % |\n|---|---|---|---|---|---|")
    for name in TOY_SUITE:
        task = ws.task(name, None)
        zs = ZeroShotClassifier(AdapterEnv(bb, task, ws.bank(bb, task)))
        acc = accuracy(zs.predict_logits("test"), task.test.labels)
        click.echo(
            f"| {name} | {task.num_classes} | {len(task.pool)} | {len(task.test)} | `{task.template}` | {acc:.1f} |"
        )


@toy_group.command("regime")
@click.option("--tasks", default=None, help="Comma-separated toy tasks [all six].")
@click.option("--backbone", default=None, help="Architecture [toy-clip].")
@click.option("--pretrained", default=None, help="Weights tag or file [the architecture's shipped weights].")
@click.option("--seeds", default="1,2,3", show_default=True, help="Seeds of the Random x CoOp runs.")
@click.option("--coop/--no-coop", default=True, show_default=True, help="Measure (c), Random x CoOp at 5 % (slow).")
@click.option(
    "--results-dir",
    default="results/regime",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the CoOp runs' records go (an interrupted measurement resumes from them).",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Also write toy_regime.md and toy_regime.json into this folder (e.g. reports).",
)
@click.option("--cache-dir", default=None, envvar="ALBENCH_CACHE")
def toy_regime(tasks, backbone, pretrained, seeds, coop, results_dir, out, cache_dir) -> None:
    """Per toy task: (a) zero-shot, (b) linear probe on frozen features, (c) Random x CoOp at 5 %."""
    import subprocess

    from albench.cli.main import split_list
    from albench.clip.backbone import BackboneSpec
    from albench.data.toy.tasks import TOY_SUITE
    from albench.engine import regime

    names = split_list(tasks) if tasks else list(TOY_SUITE)
    for n in names:
        if n not in TOY_SUITE:
            from albench.api.errors import UnknownNameError

            raise UnknownNameError("toy task", n, list(TOY_SUITE))
    try:
        seed_list = [int(s) for s in split_list(seeds)]
    except ValueError:
        raise AlbenchError(f"--seeds must be comma-separated integers, got {seeds!r}.") from None
    spec = BackboneSpec(**{k: v for k, v in (("arch", backbone), ("pretrained", pretrained)) if v})
    t0 = time.perf_counter()
    rows = regime.measure(
        names,
        spec,
        results_dir if coop else None,
        cache_dir,
        seed_list,
        on_task=lambda r: click.echo(
            f"{r.task}: zero-shot {r.zero_shot:.1f} %, linear probe "
            f"{r.linear_probe:.1f} %, CoOp 5 % {r.coop_mean:.1f} % "
            f"({r.seconds:.0f} s)",
            err=True,
        ),
    )
    md = regime.to_markdown(rows)
    click.echo(md)
    if out:
        from albench.engine.records import atomic_write_json

        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                cwd=Path(__file__).parent,
                timeout=10,
            ).stdout.strip()
        except OSError:
            commit = ""
        ws_bb = regime.Workspace(cache_dir, progress=False).backbone(spec).describe()
        head = (
            f"# Toy-world regime (`albench toy regime`)\n\nBackbone {ws_bb['arch']} ({ws_bb['identity']}), "
            f"git commit {commit or 'unknown'}, seeds {','.join(map(str, seed_list))}, "
            f"{time.perf_counter() - t0:.0f} s wall on a shared CPU (timing is noisy).\n\n"
        )
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "toy_regime.md").write_text(head + md + "\n")
        atomic_write_json(
            Path(out) / "toy_regime.json",
            {
                "backbone": ws_bb,
                "commit": commit,
                "seeds": seed_list,
                "holds": regime.holds(rows),
                "tasks": [dict(vars(r), coop_mean=r.coop_mean, a=r.a, b=r.b, c=r.c) for r in rows],
            },
        )
    if not regime.holds(rows):
        click.echo("The regime does NOT hold on this backbone (see NO above).")
