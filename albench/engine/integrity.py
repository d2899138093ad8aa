"""Preflight checks of the grid's inputs: plugin names and options, datasets, and every folder a run writes.

Registered with :func:`albench.engine.preflight.check`, so ``albench run``, ``albench status`` and the
Python API find these problems before any run, one message each, exit 2, nothing written:

* plugin and dataset names use a safe character set before they reach a file path;
* every plugin option value matches its declared schema (``albench.api.options``);
* every dataset loads (split files, listed images, labels, symlinks, train/test overlap; see
  ``albench.data.datasets.build``) and is a classification task: at least two classes, non-empty
  pool and test splits; loader options a task does not take are refused, never silently ignored;
* every zero-shot prompt and every adapter's prompt (its learned context plus the class name) fits the
  text encoder's context, so no two classes end up with the same truncated prompt;
* the folders a run writes (``<results>/<dataset>/``, ``.locks/``, ``failed/<dataset>/``) are writable.

Odd but valid inputs (class names that differ only by case) are warnings (``warnings.warn``), which the
CLI prints before the grid starts.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from albench.api.errors import AlbenchError
from albench.engine.preflight import GridContext, Problem, _writable_problem, check

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
FILE_OPTIONS = ("allow_custom_split", "skip_corrupt")  # CLI flags that every dataset of a grid receives


def safe_name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` may not become part of a file path, or None."""
    if SAFE_NAME.fullmatch(str(name)) and ".." not in str(name):
        return None
    return (
        f"{kind} name {name!r} is not a safe name: it goes into file paths, so it must be 1-100 letters, digits, "
        f"'_', '.', '+' or '-', start with a letter or digit, and not contain '..'."
    )


@check
def check_names(ctx: GridContext) -> Iterable[Problem]:
    seen = set()
    for s in ctx.specs:
        for kind, name in (("strategy", s.strategy), ("adapter", s.adapter), ("dataset", s.dataset)):
            if (kind, name) in seen:
                continue
            seen.add((kind, name))
            msg = safe_name_problem(kind, name)
            if msg:
                yield Problem(kind, str(name), msg, "Rename the plugin (its entry-point name).")


@check
def check_plugin_options(ctx: GridContext) -> Iterable[Problem]:
    """Every option value against the plugin's schema (also for grids built through the Python API)."""
    from albench.api.options import option_problems
    from albench.api.plugins import ADAPTERS, STRATEGIES

    seen = set()
    for s in ctx.specs:
        for kind, reg, name, given in (
            ("strategy", STRATEGIES, s.strategy, s.strategy_options),
            ("adapter", ADAPTERS, s.adapter, s.adapter_options),
        ):
            key = (kind, name, repr(sorted((given or {}).items())))
            if key in seen:
                continue
            seen.add(key)
            try:
                cls = reg.get(name)
            except AlbenchError as exc:
                yield Problem(kind, str(name), str(exc))
                continue
            for msg in option_problems(kind, name, cls.defaults, dict(given or {}), getattr(cls, "schema", None))[1]:
                yield Problem(f"{kind} option", str(name), msg)


@check
def check_run_folders(ctx: GridContext) -> Iterable[Problem]:
    """Each folder a run writes into, found unwritable before the run's compute rather than after it."""
    if ctx.results_dir is None:
        return
    root = Path(ctx.results_dir)
    folders = (
        [root / ".locks"]
        + [root / d for d in dict.fromkeys(s.dataset for s in ctx.specs)]
        + [root / "failed" / d for d in dict.fromkeys(s.dataset for s in ctx.specs)]
    )
    if _writable_problem(root, "results", "--results-dir") is not None:
        return  # check_results_dir names it
    for folder in folders:
        p = _writable_problem(folder, "results", "--results-dir")
        if p is not None:
            yield Problem(p.field, p.value, p.message, "Fix its permissions, or pass another --results-dir.")


def _load(ctx: GridContext, name: str, root, opts: dict):
    if ctx.workspace is not None and hasattr(ctx.workspace, "task"):
        return ctx.workspace.task(name, root, opts)  # loaded once, reused by the runs of this process
    from albench.data.tasks import load_task

    return load_task(name, data_root=root, **opts)


def _is_file_task(task) -> bool:
    from albench.data.datasets.source import FileSource

    return isinstance(task.pool.source, FileSource)


@check
def check_datasets(ctx: GridContext) -> Iterable[Problem]:
    """Every dataset loads and is a classification task the protocol can run on."""
    ctx.memo.setdefault("tasks", {})
    for name, root, opts in ctx.datasets():
        field = f"dataset {name}"
        try:
            task = _load(ctx, name, root, opts)
        except AlbenchError as exc:
            yield Problem(field, str(root or ""), str(exc))
            continue
        ctx.memo["tasks"][(name, root, repr(sorted(opts.items())))] = task
        if not _is_file_task(task):
            extra = sorted(k for k in opts if k not in FILE_OPTIONS)
            if extra:
                yield Problem(
                    field,
                    "",
                    f"Dataset '{name}' is built in and takes no loader options; got "
                    f"{', '.join(f'{k}={opts[k]!r}' for k in extra)}.",
                    "Drop the --dataset-opt (it would be ignored yet change the run's identity).",
                )
        if task.num_classes < 2:
            yield Problem(
                field,
                "",
                f"Dataset '{name}' has {task.num_classes} class(es) "
                f"({', '.join(map(repr, task.classnames)) or 'none'}); classification needs at least 2.",
            )
        for split in ("pool", "test"):
            if len(task.split(split)) == 0:
                shown = "train (the pool)" if split == "pool" else "test"
                yield Problem(
                    field,
                    "",
                    f"Dataset '{name}': the {shown} split has no images; every run would record accuracy on nothing.",
                    "Add images to that split.",
                )
        from albench.engine.protocol import round_budget

        for s in ctx.specs:
            if (s.dataset, s.data_root, repr(sorted((getattr(s, "dataset_options", {}) or {}).items()))) == (
                name,
                root,
                repr(sorted(opts.items())),
            ):
                try:
                    round_budget(s, len(task.pool))
                except AlbenchError as exc:
                    yield Problem("--round-budget", str(s.round_budget or ""), str(exc))
        lowered: dict[str, list[str]] = {}
        for c in task.classnames:
            lowered.setdefault(" ".join(c.lower().split()), []).append(c)
        for variants in lowered.values():
            if len(set(variants)) > 1:
                warnings.warn(
                    f"Dataset '{name}': class names {' and '.join(map(repr, variants))} differ only by "
                    f"case or spacing; they are separate classes with near-identical prompts. Merge "
                    f"them in the labels if they are the same class."
                )
            elif len(variants) > 1:
                yield Problem(
                    field,
                    "",
                    f"Dataset '{name}': class name {variants[0]!r} appears {len(variants)} "
                    f"times; class names must be unique.",
                )


@lru_cache(maxsize=1)
def _tokenizer():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def n_tokens(text: str) -> int:
    """BPE tokens of ``text`` without the start and end tokens (CLIP's tokenizer)."""
    return len(_tokenizer().encode(text))


def _context_length(ctx: GridContext, spec) -> int | None:
    if ctx.workspace is not None and hasattr(ctx.workspace, "backbone"):
        try:
            return int(ctx.workspace.backbone(spec).context_length)
        except AlbenchError:
            return None  # the weights check names that problem
    try:
        import open_clip

        from albench.data.toy.model import register_configs

        register_configs()  # the toy CLIPs are open_clip configs too

        cfg = open_clip.get_model_config(spec.arch)
        return int((cfg or {}).get("text_cfg", {}).get("context_length", 77))
    except Exception:
        return None


def prompt_context_problems(
    dataset: str, classnames: list[str], template: str, context: int, adapters: dict[str, dict]
) -> list[str]:
    """Zero-shot prompts and each adapter's learned-context prompts that do not fit ``context`` positions.

    Zero-shot: SOS + template(class) + EOT. Prompt learners (an ``n_ctx`` option, CoOp-style, the class
    token at the end): SOS + context + class + "." + EOT, the context being ``ctx_init``'s tokens when given.
    """
    out = []
    too_long = [c for c in classnames if n_tokens(template.format(c)) + 2 > context]
    if too_long:
        worst = max(too_long, key=lambda c: n_tokens(template.format(c)))
        out.append(
            f"Dataset '{dataset}': {len(too_long)} zero-shot prompt(s) do not fit the text encoder's {context} "
            f"positions, e.g. {template.format(worst)!r} ({n_tokens(template.format(worst)) + 2} tokens); "
            f"they would be cut and classes could get identical prompts. Shorten the class names or the "
            f"template."
        )
    longest = max((n_tokens(f"{c}.") for c in classnames), default=0)
    for adapter, opts in adapters.items():
        if "n_ctx" not in opts:
            continue
        init = opts.get("ctx_init") or ""
        n_ctx = n_tokens(init) if isinstance(init, str) and init else int(opts["n_ctx"])
        if n_ctx + longest + 2 > context:
            out.append(
                f"adapter '{adapter}': n_ctx={n_ctx} context tokens plus the longest class name of "
                f"'{dataset}' ({longest} tokens with its '.') do not fit the text encoder's {context} "
                f"positions; valid: n_ctx <= {max(0, context - longest - 2)} for this dataset."
            )
    return out


@check
def check_prompt_context(ctx: GridContext) -> Iterable[Problem]:
    from albench.api.options import resolve_options
    from albench.api.plugins import ADAPTERS

    tasks = ctx.memo.get("tasks", {})
    groups: dict = {}
    for s in ctx.specs:
        key = (s.dataset, s.data_root, repr(sorted((getattr(s, "dataset_options", {}) or {}).items())))
        if key not in tasks:
            continue  # the dataset check named its problem
        g = groups.setdefault((key, repr(s.backbone)), {"spec": s, "adapters": {}})
        try:
            cls = ADAPTERS.get(s.adapter)
            opts = resolve_options("adapter", s.adapter, cls.defaults, s.adapter_options, getattr(cls, "schema", None))
        except AlbenchError:
            continue  # the option check named it
        g["adapters"].setdefault(s.adapter, opts)
    for (key, _), g in groups.items():
        context = _context_length(ctx, g["spec"].backbone)
        if context is None:
            continue
        task = tasks[key]
        for msg in prompt_context_problems(task.name, task.classnames, task.template, context, g["adapters"]):
            yield Problem(f"dataset {task.name}", "", msg)
