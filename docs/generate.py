"""Regenerate the plugin tables in docs/strategies.md and docs/adapters.md from the registered plugins.

Each row comes from the plugin itself: the first sentence of its module docstring, its class
attributes (``needs_labels``, ``stochastic``, ``frozen_image_encoder``, ``accepts_pseudo_labels``) and
its ``defaults``. ``python docs/generate.py`` rewrites the blocks between the markers;
``python docs/generate.py --check`` exits 1 when a block is out of date (tests/test_docs.py runs it).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BEGIN, END = "<!-- BEGIN GENERATED: python docs/generate.py -->", "<!-- END GENERATED -->"


def summary(obj: type) -> str:
    """The summary line of the plugin's module docstring (PEP 257), without its final full stop."""
    doc = (importlib.import_module(obj.__module__).__doc__ or obj.__doc__ or "").strip()
    return doc.split("\n")[0].strip().rstrip(".").replace("|", "\\|")


def fmt_defaults(defaults: dict) -> str:
    if not defaults:
        return "—"
    return ", ".join(f"`{k}={v!r}`".replace("|", "\\|") for k, v in defaults.items())


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


def strategies_table() -> str:
    from albench.api.plugins import STRATEGIES

    rows = ["| name | module | what | needs labels | uses rng | defaults |", "|---|---|---|---|---|---|"]
    for info in STRATEGIES.describe():
        if info.distribution != "albench":
            continue
        cls = STRATEGIES.get(info.name)
        rows.append(
            f"| `{info.name}` | `{info.target}` | {summary(cls)} | {yes(cls.needs_labels)} | "
            f"{yes(cls.stochastic)} | {fmt_defaults(cls.defaults)} |"
        )
    return "\n".join(rows)


def adapters_table() -> str:
    from albench.api.plugins import ADAPTERS

    rows = [
        "| name | module | what | frozen image tower | takes pseudo-labels | defaults |",
        "|---|---|---|---|---|---|",
    ]
    for info in ADAPTERS.describe():
        if info.distribution != "albench":
            continue
        cls = ADAPTERS.get(info.name)
        rows.append(
            f"| `{info.name}` | `{info.target}` | {summary(cls)} | {yes(cls.frozen_image_encoder)} | "
            f"{yes(cls.accepts_pseudo_labels)} | {fmt_defaults(cls.defaults)} |"
        )
    return "\n".join(rows)


TABLES = {"strategies.md": strategies_table, "adapters.md": adapters_table}


def render(path: Path, table: str) -> str:
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: markers {BEGIN!r} ... {END!r} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, make in TABLES.items():
        path = DOCS / name
        new = render(path, make())
        if new != path.read_text():
            stale.append(name)
            if not check:
                path.write_text(new)
    if check and stale:
        print(f"out of date: {', '.join(stale)}; run: python docs/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
