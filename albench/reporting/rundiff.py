"""`albench diff`: what differs between two runs (options first, then where and how they ran)."""

from __future__ import annotations

from pathlib import Path

from albench.api.errors import AlbenchError
from albench.reporting.cells import describe_diff, option_diff


def find_record(name: str, results_dir: str | Path) -> tuple[Path, dict]:
    """A record by file path, run id, or a unique prefix of its run id or config hash."""
    from albench.engine.records import iter_records, read_record

    p = Path(name)
    if p.suffix == ".json" and p.is_file():
        rec = read_record(p)
        if rec is None:
            raise AlbenchError(f"{p} is not a valid run record.")
        return p, rec
    hits = [
        (path, rec)
        for path, rec in iter_records(Path(results_dir))
        if rec["run_id"] == name or rec["run_id"].startswith(name) or rec["config_hash"].startswith(name)
    ]
    exact = [h for h in hits if h[1]["run_id"] == name]
    if exact:
        return exact[0]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise AlbenchError(
            f"No run record {name!r} in {results_dir} (give a record file, a run id, or a prefix of "
            f"a run id or config hash)."
        )
    raise AlbenchError(
        f"{name!r} matches {len(hits)} runs in {results_dir}: "
        + ", ".join(r["run_id"] for _, r in hits[:5])
        + (" ..." if len(hits) > 5 else "")
        + "; give more of the run id."
    )


def run_diff(a: dict, b: dict) -> dict[str, dict]:
    """{"options": {key: (a, b)}, "provenance": {key: (a, b)}}: the configuration (seed included) and, apart,
    the environment and provenance (these never change numbers by design, but say where runs differ)."""
    options = option_diff({**a["config"], "_seed": a["seed"]}, {**b["config"], "_seed": b["seed"]})
    if "_seed" in options:
        options["seed"] = options.pop("_seed")
    env_a = {
        "environment": a.get("environment", {}),
        "provenance": _stable(a.get("provenance", {})),
        "device": a.get("device"),
    }
    env_b = {
        "environment": b.get("environment", {}),
        "provenance": _stable(b.get("provenance", {})),
        "device": b.get("device"),
    }
    return {"options": options, "provenance": option_diff(env_a, env_b)}


def _stable(prov: dict) -> dict:
    import shlex

    out = {k: v for k, v in prov.items() if k != "peak_memory"}
    if isinstance(out.get("command"), list):
        out["command"] = shlex.join(str(a) for a in out["command"])
    return out


def diff_text(a: dict, b: dict) -> str:
    d = run_diff(a, b)
    lines = [f"A: {a['run_id']}", f"B: {b['run_id']}"]
    if not d["options"]:
        lines.append("options: identical (same configuration and seed)")
    else:
        lines.append(f"options that differ ({len(d['options'])}), A → B:")
        lines += [f"  {k}: {describe_diff({k: v}).split(': ', 1)[1]}" for k, v in d["options"].items()]
    if d["provenance"]:
        lines.append(f"environment and provenance that differ ({len(d['provenance'])}), A → B:")
        lines += [f"  {k}: {describe_diff({k: v}).split(': ', 1)[1]}" for k, v in d["provenance"].items()]
    return "\n".join(lines)
