"""The one preflight: everything a grid needs, checked before any run starts.

A grid that would fail in every run (weights not on disk, ``--device cuda``
without a GPU, a dataset folder without ``test/``, a results directory that
cannot be written) fails here once, with one message per problem, exit code 2
and nothing written anywhere. ``albench run``, ``albench status``,
``albench doctor`` and the Python API call :func:`preflight` (or
:func:`require`) on the expanded grid.

Adding a check: write a function ``(ctx: GridContext) -> Iterable[Problem]``
and decorate it with :func:`check`. A check may also raise an
``AlbenchError``; its message becomes one problem. Checks run in registration
order and every check runs, so the user sees all problems at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from albench.api.errors import AlbenchError


@dataclass(frozen=True)
class Problem:
    """One thing that stops the grid: which input, its bad value, what is wrong, how to fix it."""

    field: str  # the option or input at fault, e.g. "--device", "--pretrained", "dataset eurosat"
    value: str  # the bad value as the user gave it ("" when there is none, e.g. a missing option)
    message: str  # what is wrong
    fix: str = ""  # what to do instead (may be empty when the message already says it)

    def text(self) -> str:
        return f"{self.message} {self.fix}".strip() if self.fix else self.message


class PreflightError(AlbenchError):
    """The grid cannot start; ``problems`` lists every reason (the CLI prints one line each)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.text() for p in self.problems))


@dataclass
class GridContext:
    """What the checks look at: the expanded runs and where they would write.

    ``default_backbone`` is True when nobody chose the backbone (no ``--backbone``,
    no preset): the toy CLIP is then only acceptable for toy tasks.
    ``workspace``, when given, is the one the runs will use, so backbones the
    preflight loads are loaded once.
    """

    specs: Sequence
    results_dir: Path | None = None
    cache_dir: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    default_backbone: bool = False
    workspace: Any = None  # an albench.engine.protocol.Workspace (not imported here: it loads the plugins)
    memo: dict = field(default_factory=dict)  # shared between checks (e.g. the resolved device)

    @classmethod
    def from_grid(
        cls, grid, results_dir=None, cache_dir=None, device: str = "auto", precision: str = "auto", workspace=None
    ) -> "GridContext":
        return cls(
            list(grid.specs),
            Path(results_dir) if results_dir is not None else None,
            Path(cache_dir) if cache_dir is not None else None,
            device or "auto",
            precision or "auto",
            bool(getattr(grid, "default_backbone", False)),
            workspace,
        )

    def backbones(self) -> list:
        """Distinct backbone specs of the grid, in order."""
        out: dict = {}
        for s in self.specs:
            out.setdefault(repr(s.backbone), s.backbone)
        return list(out.values())

    def datasets(self) -> list[tuple[str, str | None, dict]]:
        """Distinct (dataset, data root, loader options) of the grid, in order."""
        out: dict = {}
        for s in self.specs:
            opts = dict(getattr(s, "dataset_options", {}) or {})
            out.setdefault((s.dataset, s.data_root, repr(sorted(opts.items()))), (s.dataset, s.data_root, opts))
        return list(out.values())


Check = Callable[[GridContext], Iterable[Problem]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register ``fn`` as a preflight check (decorator); returns it unchanged."""
    if fn not in CHECKS:
        CHECKS.append(fn)
    return fn


def preflight(ctx: GridContext, checks: Sequence[Check] | None = None) -> list[Problem]:
    """Run every check and return all problems (empty: the grid may start). Never writes anything."""
    problems: list[Problem] = []
    for fn in CHECKS if checks is None else checks:
        try:
            found = list(fn(ctx) or ())
        except AlbenchError as exc:
            found = [Problem(fn.__name__.removeprefix("check_"), "", str(exc))]
        for p in found:
            if p not in problems:
                problems.append(p)
    return problems


def require(ctx: GridContext) -> None:
    """Raise :class:`PreflightError` (exit 2) when :func:`preflight` finds any problem."""
    problems = preflight(ctx)
    if problems:
        raise PreflightError(problems)


# --- directories ----------------------------------------------------------------


def _writable_problem(path: Path, what: str, option: str) -> Problem | None:
    """Why ``path`` could not be created and written, or None; creates nothing."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return Problem(
            option,
            str(path),
            f"Cannot write {what} to {path}: {probe} is not a directory.",
            f"Pass {option} with a writable directory.",
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        return Problem(
            option,
            str(path),
            f"Cannot write {what} to {path}: {probe} is not writable.",
            f"Pass {option} with a writable directory.",
        )
    return None


@check
def check_results_dir(ctx: GridContext) -> Iterable[Problem]:
    if ctx.results_dir is not None:
        p = _writable_problem(Path(ctx.results_dir), "results", "--results-dir")
        if p:
            yield p


@check
def check_cache_dir(ctx: GridContext) -> Iterable[Problem]:
    from albench.data.features import ENV_CACHE, default_cache_dir

    root = Path(ctx.cache_dir) if ctx.cache_dir is not None else default_cache_dir()
    p = _writable_problem(root, "the feature cache", "--cache-dir")
    if p:
        yield Problem(p.field, p.value, p.message, f"Pass --cache-dir or set {ENV_CACHE} to a writable directory.")


# --- device and precision ---------------------------------------------------------


@check
def check_device(ctx: GridContext) -> Iterable[Problem]:
    """The device exists here, and the precision works on it."""
    from albench.clip.compute import resolve_compute, resolve_device

    try:
        resolve_device(ctx.device)
    except AlbenchError as exc:
        yield Problem("--device", str(ctx.device), str(exc))
        return
    try:
        ctx.memo["compute"] = resolve_compute(ctx.device, ctx.precision)
    except AlbenchError as exc:
        yield Problem("--precision", str(ctx.precision), str(exc))


# --- backbones ----------------------------------------------------------------------


@check
def check_backbone_choice(ctx: GridContext) -> Iterable[Problem]:
    """Real images never meet the toy CLIP by accident."""
    from albench.data.datasets import is_real_dataset

    if not ctx.default_backbone:
        return
    real = sorted({s.dataset for s in ctx.specs if is_real_dataset(s.dataset) and s.backbone.arch == "toy-clip"})
    if real:
        yield Problem(
            "--backbone",
            "",
            f"Dataset(s) {', '.join(real)} hold real images, but no backbone was chosen "
            f"and the default is the toy CLIP (trained on procedural images only).",
            "Pass --backbone and --pretrained, e.g. --backbone ViT-B-16 --pretrained openai (or "
            "--pretrained /path/to/open_clip_model.safetensors), or --backbone toy-clip to use the toy "
            "CLIP on purpose.",
        )


@check
def check_weights(ctx: GridContext) -> Iterable[Problem]:
    """Every backbone's weights are found, readable and fit their architecture."""
    from albench.clip.weights import resolve_weights

    compute = ctx.memo.get("compute")
    for spec in ctx.backbones():
        try:
            resolve_weights(spec)  # cheap: file found, format known, activation decided
            if ctx.workspace is not None and compute is not None:
                ctx.workspace.backbone(spec)  # full load once, reused by the runs
            else:
                from albench.clip.weights import load_model

                load_model(spec)
        except AlbenchError as exc:
            yield Problem("--pretrained", str(spec.pretrained or ""), str(exc))


# --- datasets ---------------------------------------------------------------------------


@check
def check_dataset_layouts(ctx: GridContext) -> Iterable[Problem]:
    """Each dataset's folder, split files and loader options, without reading images."""
    from albench.data.datasets.build import check_options
    from albench.data.datasets.coop import COOP_SPLITS, LOADER_OPTIONS, check_layout
    from albench.data.datasets.generic import check_generic

    for name, root, opts in ctx.datasets():
        try:
            if name in COOP_SPLITS:
                allowed: dict[str, type] = dict(LOADER_OPTIONS)
                check_options(name, opts, allowed)
                check_layout(name, root)
            elif name in ("imagefolder", "csv"):
                check_generic(name, root, opts)
        except AlbenchError as exc:
            yield Problem(f"dataset {name}", str(root or ""), str(exc))


# Checks of names, options, dataset integrity, prompts and run folders register themselves on import.
from albench.engine import integrity  # noqa: E402,F401
