"""``albench bench --section batched-runs``: a column's seeds run one by one against run together.

Batched runs (``albench.engine.protocol.execute_together``, ``docs/performance.md``) run R seeds of
one column in lock step and train their CoOp contexts with one text-tower call per step. This
section times the same R runs both ways in one process on a warm feature cache (so neither arm
encodes an image), interleaved (A B, B A, ...), by process CPU time and wall time, and checks that
the two arms wrote equal records (apart from timings). Tasks with few classes gain most: the text
tower's per-operation overhead is shared, while its FLOPs grow with R x C.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path


from albench.bench.timing import REPEATS, interleaved, one_torch_thread, summary

QUICK = {"datasets": ("digits", "toy_fine"), "seeds": (1, 2, 3), "rounds": 3, "repeats": REPEATS}
FULL = {**QUICK, "rounds": 6}


def _stripped(results: Path) -> dict:
    """Records by file name without timings (what must be equal between the arms)."""
    out = {}
    for p in sorted(results.rglob("*.json")):
        if "failed" in p.parts or p.name.startswith("."):
            continue
        rec = json.loads(p.read_text())
        rec["timing"] = None
        rec.pop("provenance", None)
        for r in rec["rounds"]:
            r["seconds"] = None
            r["train"].pop("seconds", None)
            (r.get("diagnostics") or {}).pop("seconds", None)
        out[p.name] = rec
    return out


def measure_case(dataset: str, cfg: dict, workspace, tmp: Path) -> dict:
    from albench.engine.protocol import RunSpec, execute, execute_together

    specs = [RunSpec("random", "coop", dataset, seed=s, rounds=cfg["rounds"]) for s in cfg["seeds"]]
    execute(specs[0], tmp / f"{dataset}-warm", workspace)  # fill the feature cache: no arm encodes
    dirs: dict[str, list[Path]] = {"one_by_one": [], "together": []}

    def arm(name: str):
        def go():
            out = tmp / f"{dataset}-{name}-{len(dirs[name])}"
            dirs[name].append(out)
            if name == "together":
                execute_together(specs, out, workspace)
            else:
                for sp in specs:
                    execute(sp, out, workspace)

        return go

    res = interleaved({"one_by_one": arm("one_by_one"), "together": arm("together")}, repeats=cfg["repeats"])
    alone, batched = ([s for _, s in res[k]] for k in ("one_by_one", "together"))
    reference = _stripped(dirs["one_by_one"][0])
    equal = all(_stripped(d) == reference for d in dirs["one_by_one"] + dirs["together"])
    ratios_cpu = [a.cpu_s / b.cpu_s for a, b in zip(alone, batched)]
    ratios_wall = [a.wall_s / b.wall_s for a, b in zip(alone, batched)]
    a_cpu, b_cpu = summary([s.cpu_s for s in alone]), summary([s.cpu_s for s in batched])
    return {
        "dataset": dataset,
        "classes": workspace.task(dataset, None).num_classes,
        "runs": len(specs),
        "rounds": cfg["rounds"],
        "one_by_one_cpu_s": _cell(a_cpu),
        "together_cpu_s": _cell(b_cpu),
        "one_by_one_wall_s": _cell(summary([s.wall_s for s in alone])),
        "together_wall_s": _cell(summary([s.wall_s for s in batched])),
        "speedup_cpu": round(summary(ratios_cpu)["median"], 2),
        "speedup_wall": round(summary(ratios_wall)["median"], 2),
        "records_equal": equal,
    }


def _cell(s: dict) -> str:
    return f"{s['median']:.3g} [{s['min']:.3g}–{s['max']:.3g}]"


def run(quick: bool = False, **overrides) -> dict:
    """``overrides`` replace entries of the QUICK / FULL configuration (tests use small ones)."""
    from albench.engine.protocol import Workspace

    cfg = {**(QUICK if quick else FULL), **overrides}
    with one_torch_thread():
        with tempfile.TemporaryDirectory() as tmp:
            ws = Workspace(Path(tmp) / "cache", device="cpu", progress=False)
            rows = [measure_case(d, cfg, ws, Path(tmp)) for d in cfg["datasets"]]
    ratios = {f"{r['dataset']}_speedup_cpu": r["speedup_cpu"] for r in rows}
    notes = (
        f"Random x CoOp (defaults: 200-step floor per round), seeds {', '.join(map(str, cfg['seeds']))}, "
        f"{cfg['rounds']} rounds, toy CLIP on the CPU, 1 torch thread, one process, warm feature cache. "
        "`one_by_one`: `protocol.execute` per seed (what `--batch-runs 1` does); `together`: one "
        "`protocol.execute_together` call (what a `--batch-runs 3` unit does: lock step, one text-tower call "
        f"per step for the {len(cfg['seeds'])} context sets). Cells: median [min–max] of {cfg['repeats']} "
        "interleaved repetitions of the whole group; `speedup_*`: one_by_one / together per repetition, median. "
        "`records_equal`: every repetition of both arms wrote the same records apart from timings."
        + (" Quick mode: fewer rounds." if quick else "")
    )
    return {
        "title": "Batched runs: a column's seeds one by one vs together",
        "rows": rows,
        "notes": notes,
        "ratios": ratios,
    }
