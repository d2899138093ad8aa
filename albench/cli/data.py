"""``albench data``: write stand-in dataset trees and check real ones."""

from __future__ import annotations

import time

import click


@click.group("data")
def data_group() -> None:
    """Datasets: fake CoOp-layout trees for tests and benchmarks, and layout checks."""


def _coop_names() -> list[str]:
    from albench.data.datasets.coop import COOP_SPLITS

    return sorted(COOP_SPLITS)


@data_group.command("fake")
@click.argument("name")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="Data root to write <folder>/ into.")
@click.option("--image-size", default=64, show_default=True, type=int, help="Side of the square synthetic JPEGs.")
@click.option(
    "--scale",
    type=click.Choice(["small", "full"]),
    default="small",
    show_default=True,
    help="small: a few images per class; full: CoOp's official split sizes.",
)
@click.option("--seed", default=0, show_default=True, type=int)
def fake_cmd(name: str, root: str, image_size: int, scale: str, seed: int) -> None:
    """Write a fake CoOp-layout tree of NAME (real class names, split files, split sizes)."""
    from albench.data.datasets.fake import generate

    t0 = time.perf_counter()
    info = generate(name, root, image_size=image_size, scale=scale, seed=seed, progress=True)
    click.echo(
        f"wrote {info['path']}: {info['classes']} classes, train/val/test "
        f"{info['train']:,}/{info['val']:,}/{info['test']:,} images of {image_size}px ({scale}) "
        f"in {time.perf_counter() - t0:.1f}s"
    )


@data_group.command("check")
@click.argument("name")
@click.option("--data-root", default=None, envvar="ALBENCH_DATA", help="Root of CoOp-layout datasets [$ALBENCH_DATA].")
@click.option("--allow-custom-split", is_flag=True, help="Accept split sizes that differ from CoOp's.")
@click.option("--verify-images", is_flag=True, help="Decode every image once and report the corrupt ones.")
def check_cmd(name: str, data_root: str | None, allow_custom_split: bool, verify_images: bool) -> None:
    """Load dataset NAME, validate its layout and print its splits."""
    from albench.data.tasks import load_task

    options = {"allow_custom_split": True} if allow_custom_split else {}
    if verify_images:
        options["skip_corrupt"] = True
    task = load_task(name, data_root=data_root, **options)
    val = len(task.val) if task.val is not None else 0
    click.echo(
        f"{name}: {task.num_classes} classes, pool (train) {len(task.pool):,}, val {val:,} (unused), "
        f"test {len(task.test):,}; template {task.template!r}"
    )
    if task.meta.get("official_split") is False:
        click.echo("note: split sizes differ from CoOp's official split (accepted by --allow-custom-split)")
    skipped = task.meta.get("skipped_images") or []
    if verify_images:
        click.echo(f"{len(skipped)} corrupt image(s)" + (":" if skipped else ""))
        for s in skipped:
            click.echo(f"  {s['split']}: {s['path']} ({s['error']})")
