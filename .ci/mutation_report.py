#!/usr/bin/env python3
"""Summarise a finished (or partial) mutmut run from mutants/: counts per module and the diff of every
surviving mutant (one changed line each), for reports/mutation.md.

usage: python .ci/mutation_report.py [--survivors FILE]
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


def functions(path: Path) -> dict[str, str]:
    """name -> source of every function (methods included) in a mutmut-generated file."""
    src = path.read_text()
    tree = ast.parse(src)
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = ast.get_source_segment(src, node) or ""
    return out


def diff_line(orig: str, mutant: str) -> str:
    a, b = orig.splitlines()[1:], mutant.splitlines()[1:]  # skip the def line (names differ)
    d = [x for x in difflib.unified_diff(a, b, lineterm="", n=0) if x[:1] in "+-" and x[:3] not in ("+++", "---")]
    return " | ".join(x.strip() for x in d)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--survivors", type=Path, help="write one line per surviving mutant: name<TAB>diff")
    args = ap.parse_args()
    per_module: dict[str, collections.Counter] = {}
    survivors = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        mod = str(meta.relative_to("mutants"))[: -len(".meta")]
        data = json.loads(meta.read_text())
        c = collections.Counter(STATUS.get(v, f"exit {v}") for v in data.get("exit_code_by_key", {}).values())
        per_module[mod] = c
        if c["survived"]:
            funcs = functions(Path("mutants") / mod)
            for key, v in data["exit_code_by_key"].items():
                if v != 0:
                    continue
                fname = key.rsplit(".", 1)[-1]  # x_func__mutmut_3 or xǁClassǁmethod__mutmut_3
                base = fname.rsplit("__mutmut_", 1)[0]
                orig, mut = funcs.get(base + "__mutmut_orig", ""), funcs.get(fname, "")
                survivors.append((key, diff_line(orig, mut)))
    total = collections.Counter()
    print("| module | mutants | killed | timeout | survived | no tests | not checked |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mod, c in per_module.items():
        total.update(c)
        print(
            f"| `{mod}` | {sum(c.values())} | {c['killed']} | {c['timeout']} | {c['survived']} | {c['no tests']} "
            f"| {c['not checked']} |"
        )
    print(
        f"| **all** | {sum(total.values())} | {total['killed']} | {total['timeout']} | {total['survived']} "
        f"| {total['no tests']} | {total['not checked']} |"
    )
    if args.survivors:
        args.survivors.write_text("".join(f"{k}\t{d}\n" for k, d in survivors))


if __name__ == "__main__":
    main()
