"""``albench bench``: measured figures written to ``reports/bench.json`` and ``reports/bench.md``.

Each section is a function ``run(quick: bool) -> dict`` returning
``{"title": str, "rows": [dict, ...], "notes": str}`` (rows become a Markdown
table). Sections live in their own modules and are registered under the
entry-point group ``albench.bench`` in pyproject.toml (``SECTIONS``, the same
registry mechanism as strategies, adapters and datasets; a section's module is
imported only when it runs); ``albench bench --section NAME`` runs a subset. Compare ratios measured in one
run rather than absolute seconds: shared machines are noisy.
"""
from __future__ import annotations

import importlib
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from albench.api.registry import Registry

SECTIONS: Registry = Registry("bench section", "albench.bench", None)


def register_section(name: str, section: Callable[..., dict] | str) -> None:
    """Register a section in-process: a ``run(quick) -> dict`` function or its "module:function" path."""
    if isinstance(section, str):
        mod, fn = section.split(":")
        section = getattr(importlib.import_module(mod), fn)
    SECTIONS.register(name, section)


def machine() -> dict:
    import os

    import torch

    from albench.engine.environment import environment

    return {**environment(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "processor": platform.processor(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def rows_to_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("—" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def run_sections(names: list[str] | None, quick: bool, out_dir: Path) -> dict:
    from albench.api.errors import UnknownNameError

    names = names or SECTIONS.names()
    for n in names:
        if n not in SECTIONS:
            raise UnknownNameError("bench section", n, SECTIONS.names())
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "bench.json"
    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    result = {"machine": machine(), "quick": quick, "sections": dict(previous.get("sections", {}))}
    for n in names:
        run = SECTIONS.get(n)
        t0 = time.perf_counter()
        section = run(quick=quick)
        section["wall_seconds"] = round(time.perf_counter() - t0, 2)
        section["measured_at"] = result["machine"]["date"]
        result["sections"][n] = section
    from albench.api.atomic import atomic_write
    from albench.engine.records import atomic_write_json

    atomic_write_json(json_path, result)
    md = [f"# albench bench\n", f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, "
          f"torch {result['machine']['torch']}, CUDA: {result['machine']['cuda'] or 'none'}; "
          f"albench {result['machine']['albench']} ({result['machine']['git_sha']}); {result['machine']['date']}.\n"]
    for n, sec in result["sections"].items():
        md.append(f"## {n}: {sec.get('title', '')}\n")
        md.append(f"Measured {sec.get('measured_at', '?')} in {sec.get('wall_seconds', '?')} s.\n")
        md.append(rows_to_markdown(sec.get("rows", [])) + "\n")
        if sec.get("notes"):
            md.append(sec["notes"] + "\n")
    atomic_write(out_dir / "bench.md", "\n".join(md))
    return result
