#!/usr/bin/env python3
"""Summarise a finished (or partial) mutmut run from mutants/: counts and score per module, and the diff of
every surviving mutant (one changed line each) grouped by its triage, for reports/mutation.md.

usage: python .ci/mutation_report.py [--triage reports/mutation-triage.tsv] [--survivors-md FILE]

The triage file has one line per surviving mutant that was judged: ``name<TAB>class<TAB>reason`` with class
``E`` (equivalent: cannot change any output) or ``N`` (changes only diagnostics counts or error text).
Survivors not in it count as non-equivalent. Score = killed (by a failing test or the time limit) /
(mutants with a verdict − equivalent ones).
"""

from __future__ import annotations

import argparse
import ast
import collections
import difflib
import json
from pathlib import Path

STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    -24: "timeout",
    24: "timeout",
    33: "no tests",
    34: "skipped",
    37: "type-checked",
    None: "not checked",
}
CLASSES = {"E": "equivalent", "N": "diagnostics or error text only", "?": "not killed, not equivalent"}


def functions(path: Path) -> dict[str, str]:
    """name -> source of every function (methods included) in a mutmut-generated file."""
    src = path.read_text()
    lines = src.splitlines()
    out = {}
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):  # whole lines: get_source_segment is O(file)
            out[node.name] = "\n".join(lines[node.lineno - 1 : node.end_lineno])
    return out


def diff_line(orig: str, mutant: str) -> str:
    a, b = orig.splitlines()[1:], mutant.splitlines()[1:]  # skip the def line (names differ)
    d = [x for x in difflib.unified_diff(a, b, lineterm="", n=0) if x[:1] in "+-" and x[:3] not in ("+++", "---")]
    return " | ".join(x.strip() for x in d)


def read_triage(path: Path | None) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    if path is None:
        return out
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, cls, reason = (line.split("\t") + ["", ""])[:3]
        if cls not in CLASSES:
            raise SystemExit(f"{path}: class {cls!r} of {name} is not one of {', '.join(CLASSES)}")
        out[name] = (cls, reason)
    return out


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f} %" if b else "—"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--triage", type=Path, help="name<TAB>E|N<TAB>reason per judged survivor")
    ap.add_argument("--survivors-md", type=Path, help="write the surviving mutants, grouped by triage, as Markdown")
    args = ap.parse_args()
    triage = read_triage(args.triage)
    per_module: dict[str, collections.Counter] = {}
    survivors = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        mod = str(meta.relative_to("mutants"))[: -len(".meta")]
        data = json.loads(meta.read_text())
        c: collections.Counter = collections.Counter()
        funcs = functions(Path("mutants") / mod)
        for key, v in data.get("exit_code_by_key", {}).items():
            status = STATUS.get(v, f"exit {v}")
            c[status] += 1
            if status != "survived":
                continue
            cls, reason = triage.get(key, ("?", ""))
            c[cls] += 1
            fname = key.rsplit(".", 1)[-1]  # x_func__mutmut_3 or xǁClassǁmethod__mutmut_3
            base = fname.rsplit("__mutmut_", 1)[0]
            orig, mut = funcs.get(base + "__mutmut_orig", ""), funcs.get(fname, "")
            survivors.append((key, cls, reason, diff_line(orig, mut)))
        per_module[mod] = c

    def row(name: str, c: collections.Counter) -> str:
        verdict = sum(c.values()) - c["not checked"] - c["E"] - c["N"] - c["?"]  # E/N/? sub-count survivors
        killed = c["killed"] + c["timeout"]
        return (
            f"| {name} | {verdict} | {c['killed']} | {c['timeout']} | {c['survived']} | {c['E']} | {c['N']} "
            f"| {c['?']} | {c['not checked']} | {pct(killed, verdict - c['E'])} | {pct(killed, verdict - c['E'] - c['N'])} |"
        )

    print(
        "| module | mutants | killed | timeout | survived | equivalent | diagnostics/text | other | not checked "
        "| score | score without N |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    total: collections.Counter = collections.Counter()
    groups: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for mod, c in per_module.items():
        total.update(c)
        groups["strategies/*.py" if mod.startswith("strategies/") else "selection numerics"].update(c)
        print(row(f"`{mod}`", c))
    for name, c in groups.items():
        print(row(f"**{name}**", c))
    print(row("**all**", total))
    if args.survivors_md:
        lines = [
            "# Surviving mutants (see mutation.md)",
            "",
            "Generated by `python .ci/mutation_report.py --triage reports/mutation-triage.tsv --survivors-md ...` "
            "from the run's `mutants/` folder. Classes: " + "; ".join(f"`{k}` {v}" for k, v in CLASSES.items()) + ".",
            "",
        ]
        for cls in CLASSES:
            rows = [s for s in survivors if s[1] == cls]
            lines += [f"## {cls}: {CLASSES[cls]} ({len(rows)})", "", "| mutant | change | why |", "|---|---|---|"]
            for key, _, reason, diff in rows:
                d = diff.replace("|", "\\|")
                lines.append(f"| `{key}` | `{d}` | {reason} |")
            lines.append("")
        args.survivors_md.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
