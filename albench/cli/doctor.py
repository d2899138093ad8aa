"""``albench doctor``: what this machine has for a grid, and what is missing.

Prints the versions, the devices and their bf16 support, the caches searched,
for each backbone the weights found (path, format, activation decision and why)
or how to get them, each dataset's status, and then the one preflight's verdict
on the grid (``albench.engine.preflight``). Takes the same options as
``albench run`` (usually ``--preset P --data-root D``). Exit code 1 when
anything the grid needs is missing, 0 when ``albench run`` would start.
"""

from __future__ import annotations

import platform
import sys

import click

from albench.cli.main import _build_grid, _grid_options


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return (
        f"albench {v('albench')}, torch {v('torch')}, open_clip {v('open_clip_torch')}, "
        f"python {platform.python_version()}"
    )


def _devices() -> list[str]:
    import torch

    lines = ["cpu: yes (bf16 through CPU autocast)"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            lines.append(
                f"cuda:{i}: {torch.cuda.get_device_name(i)} (bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'})"
            )
    else:
        lines.append(f"cuda: none visible (torch CUDA build: {torch.version.cuda or 'none'})")
    return lines


@click.command("doctor")
@_grid_options
def doctor_cmd(**kw) -> None:
    """Check what a grid (e.g. --preset table1 --data-root D) needs on this machine; exit 1 if anything is missing."""
    from albench.api.errors import AlbenchError
    from albench.clip.compute import resolve_compute
    from albench.clip.weights import hub_cache_dirs, load_model, openai_cache_dirs, resolve_weights
    from albench.data.features import default_cache_dir
    from albench.engine.preflight import CHECKS, GridContext, Problem, check_dataset_layouts, check_weights, preflight

    click.echo(_versions())
    click.echo("devices:")
    for line in _devices():
        click.echo(f"  {line}")
    try:
        c = resolve_compute(kw["device"], kw["precision"])
        click.echo(
            f"  runs would use: {c.device} in {c.precision} (--device {kw['device']} --precision {kw['precision']})"
        )
    except AlbenchError as exc:
        click.echo(f"  runs would use: PROBLEM: {exc}")
    cache = kw["cache_dir"] or default_cache_dir()
    click.echo(f"feature cache: {cache}")
    grid = _build_grid(kw)
    ctx = GridContext.from_grid(grid, kw["results_dir"], kw["cache_dir"], kw["device"], kw["precision"])
    click.echo("backbones:")
    weight_problems = []
    for spec in ctx.backbones():
        name = f"{spec.arch} / {spec.pretrained or 'default'}"
        click.echo(f"  {name}")
        click.echo(
            f"    searched: Hugging Face hub cache {', '.join(map(str, hub_cache_dirs(spec)))}; "
            f"OpenAI archives {', '.join(map(str, openai_cache_dirs(spec)))}"
        )
        try:
            res = resolve_weights(spec)
            load_model(spec)
        except AlbenchError as exc:
            click.echo(f"    MISSING: {exc}")
            weight_problems.append(Problem("--pretrained", str(spec.pretrained or ""), str(exc)))
            continue
        where = str(res.path) if res.path else "random init (seed 0)"
        click.echo(f"    ok: {where} [{res.format}, found in {res.found_in}]")
        click.echo(f"    activation: {'QuickGELU' if res.quick_gelu else 'GELU'} ({res.quick_gelu_reason})")
    click.echo("datasets:")
    for name, root, opts in ctx.datasets():
        one = GridContext([s for s in ctx.specs if s.dataset == name][:1])
        problems = list(check_dataset_layouts(one))
        status = "ok" if not problems else "MISSING: " + problems[0].text().replace("\n", "\n      ")
        click.echo(f"  {name} (data root {root or '-'}): {status}")
    # the weights were just loaded above: the rest of the preflight, plus what that found
    problems = preflight(ctx, [c for c in CHECKS if c is not check_weights])
    problems[len(problems) :] = [p for p in weight_problems if p not in problems]
    if problems:
        click.echo(f"\n{len(problems)} problem(s); albench run would stop before any run (exit 2):")
        for p in problems:
            click.echo("  - " + p.text().replace("\n", "\n    "))
        sys.exit(1)
    click.echo("\nready: albench run with these options would start.")
