"""Read run records into pandas and summarise accuracy as mean ± std over seeds.

The ± is the sample standard deviation over seeds (ddof = 1); a cell with one
seed shows no ±. Records with different configuration hashes (other than the
seed) are never averaged together.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from albench.engine.records import iter_records

STD_NOTE = "± = sample standard deviation over seeds (ddof = 1)"


def config_group(record: dict) -> str:
    """Hash of the configuration without the seed: records sharing it may be averaged."""
    from albench.engine.protocol import canonical
    import hashlib

    cfg = {k: v for k, v in record["config"].items() if k != "seed"}
    return hashlib.sha256(canonical(cfg).encode()).hexdigest()[:8]


def load_rounds(results_dir: str | Path) -> pd.DataFrame:
    """One row per (run, round), plus a round-0 zero-shot row per run."""
    rows = []
    for path, rec in iter_records(Path(results_dir)):
        base = {"dataset": rec["dataset"], "adapter": rec["adapter"], "strategy": rec["strategy"],
                "label": rec.get("label", rec["strategy"]), "seed": rec["seed"], "backbone": rec["config"]["backbone"],
                "group": config_group(rec), "path": str(path)}
        rows.append({**base, "round": 0, "budget_pct": 0.0, "accuracy": rec["zero_shot_accuracy"]})
        for r in rec["rounds"]:
            rows.append({**base, "round": r["round"], "budget_pct": r["budget_pct"], "accuracy": r["accuracy"],
                         "select_seconds": r["seconds"]["select"], "classes_covered": r.get("classes_covered")})
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """mean, std (ddof=1) and seed count per (dataset, adapter, label, group, round)."""
    keys = ["dataset", "adapter", "label", "group", "round"]
    g = df.groupby(keys, sort=True)
    out = g["accuracy"].agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else np.nan, n="count").reset_index()
    out["budget_pct"] = g["budget_pct"].mean().values
    return out


def format_cell(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def simple_table(results_dir: str | Path) -> str:
    """Markdown: rows = dataset / adapter / round, columns = strategy labels (plus zero-shot)."""
    df = load_rounds(results_dir)
    if df.empty:
        return f"No run records found in {results_dir}."
    s = summarise(df)
    groups_per_label = s.groupby(["dataset", "adapter", "label"])["group"].nunique()
    if (groups_per_label > 1).any():
        import warnings

        clash = groups_per_label[groups_per_label > 1].index.tolist()
        warnings.warn(f"records with different configurations for {clash}; shown apart (column suffix = config hash)",
                      stacklevel=2)
        s["column"] = np.where(s.set_index(["dataset", "adapter", "label"]).index.isin(clash), s["label"] + "@" + s["group"], s["label"])
    else:
        s["column"] = s["label"]
    s["cell"] = [format_cell(m, sd) for m, sd in zip(s["mean"], s["std"])]
    zs = s[s["round"] == 0].groupby(["dataset", "adapter"]).apply(
        lambda x: format_cell(*_pool_zero_shot(df, x.name)), include_groups=False)
    body = s[s["round"] > 0]
    table = body.pivot_table(index=["dataset", "adapter", "round"], columns="column", values="cell", aggfunc="first")
    budget = body.groupby(["dataset", "adapter", "round"])["budget_pct"].mean()
    table.insert(0, "labels %", budget.map(lambda v: f"{v:.1f}"))
    table.insert(1, "zero-shot", [zs.get((d, a), "—") for d, a, _ in table.index])
    lines = ["| dataset | adapter | round | " + " | ".join(table.columns) + " |",
             "|" + "---|" * (3 + len(table.columns))]
    for (d, a, r), row in table.iterrows():
        lines.append(f"| {d} | {a} | {r} | " + " | ".join("—" if pd.isna(v) else str(v) for v in row.values) + " |")
    n_seeds = int(s["n"].max())
    lines.append(f"\nAccuracy (%) on the test split; {STD_NOTE}; up to {n_seeds} seed(s) per cell.")
    return "\n".join(lines)


def _pool_zero_shot(df: pd.DataFrame, key) -> tuple[float, float]:
    d, a = key
    z = df[(df["dataset"] == d) & (df["adapter"] == a) & (df["round"] == 0)].drop_duplicates(["backbone", "seed"])
    vals = z.groupby("seed")["accuracy"].first()
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")


# --- the paper's table layout (presets) ------------------------------------------

PAPER_NOTE = ("— = not reported, as in the paper (first round random by construction); n/a = no records yet; "
              "bold = best in row; (+x) = Ours over the strongest baseline in that row")


def _fmt_delta(d: float) -> str:
    return f"(+{d:.1f})" if d >= 0 else f"(−{abs(d):.1f})"


def _budget_round(rec: dict, budget: float) -> int:
    proto = rec["config"]["protocol"]
    if proto.get("round_budget") is not None:
        return int(budget)
    return int(round(budget / (proto["round_fraction"] * 100.0)))


def _pick_group(recs: list[dict], where: str, warn: list[str]) -> list[dict]:
    """Records of one configuration (never averaged across config hashes): the one with most seeds, then newest."""
    groups: dict[str, list[dict]] = {}
    for r in recs:
        groups.setdefault(config_group(r), []).append(r)
    if len(groups) == 1:
        return next(iter(groups.values()))
    ranked = sorted(groups.items(), key=lambda kv: (len({r["seed"] for r in kv[1]}),
                                                    max(r.get("timing", {}).get("finished_at", "") for r in kv[1])))
    chosen = ranked[-1]
    warn.append(f"{where}: records of {len(groups)} configurations; showing config {chosen[0]} "
                f"({len(chosen[1])} run(s)), ignoring {', '.join(k for k, _ in ranked[:-1])}")
    return chosen[1]


def _records(source) -> list[dict]:
    """A results directory, or records already read (the report reads them once)."""
    if isinstance(source, (str, Path)):
        return [rec for _, rec in iter_records(Path(source))]
    return list(source)


def preset_frame(preset, results_dir, budgets=None, seeds=None) -> tuple[pd.DataFrame, list[str]]:
    """Long table for a preset: one row per (dataset, budget, column) with mean, std (ddof=1), n.

    Includes the Zero-shot column (budget 0 of every run; deterministic, so one value per
    dataset) and the per-budget Average over datasets (only when every dataset has a value).
    """
    budgets = list(budgets or preset.budgets)
    seeds = set(seeds or preset.seeds)
    warn: list[str] = []
    by_cell: dict[tuple, list[dict]] = {}
    for rec in _records(results_dir):
        if rec["dataset"] not in preset.datasets or rec["seed"] not in seeds:
            continue
        if rec.get("backbone", {}).get("arch") != preset.backbone.arch:
            continue
        by_cell.setdefault((rec["dataset"], rec["strategy"], rec["adapter"]), []).append(rec)
    rows = []
    for d in preset.datasets:
        chosen_all: list[dict] = []
        for c in preset.columns:
            recs = by_cell.get((d, c.strategy, c.adapter), [])
            recs = _pick_group(recs, f"{d} {c.label}", warn) if recs else []
            chosen_all += recs
            for b in budgets:
                base = {"dataset": d, "title": preset.titles[d], "paper_dataset": preset.paper_title(d),
                        "budget": b, "column": c.label, "strategy": c.strategy, "adapter": c.adapter, "role": c.role}
                if b in c.dash_budgets:
                    rows.append({**base, "mean": np.nan, "std": np.nan, "n": 0, "seeds": "", "status": "dash"})
                    continue
                vals = {}
                for r in recs:
                    rr = _budget_round(r, b)
                    hit = [x for x in r["rounds"] if x["round"] == rr]
                    if hit:
                        vals[r["seed"]] = hit[0]["accuracy"]
                v = np.array([vals[s] for s in sorted(vals)], dtype=float)
                rows.append({**base, "mean": v.mean() if v.size else np.nan,
                             "std": v.std(ddof=1) if v.size > 1 else np.nan, "n": int(v.size),
                             "seeds": ",".join(str(s) for s in sorted(vals)), "status": "ok" if v.size else "missing"})
        zs = {}
        for r in chosen_all:
            zs.setdefault(r["seed"], set()).add(round(r["zero_shot_accuracy"], 6))
        if any(len(v) > 1 for v in zs.values()):
            warn.append(f"{d}: zero-shot accuracy differs between runs of one seed (different backbones?)")
        zv = np.array([np.mean(list(v)) for v in zs.values()], dtype=float)
        for b in budgets:
            rows.append({"dataset": d, "title": preset.titles[d], "paper_dataset": preset.paper_title(d), "budget": b,
                         "column": "Zero-shot", "strategy": "zero-shot", "adapter": "-", "role": "zero-shot",
                         "mean": zv.mean() if zv.size else np.nan, "std": zv.std(ddof=1) if zv.size > 1 else np.nan,
                         "n": int(zv.size), "seeds": ",".join(str(s) for s in sorted(zs)),
                         "status": "ok" if zv.size else "missing"})
    df = pd.DataFrame(rows)
    avg = []
    for (col, b), g in df.groupby(["column", "budget"], sort=False):
        first = g.iloc[0]
        ok = (g["status"] == "ok").all()
        status = "dash" if (g["status"] == "dash").all() else ("ok" if ok else "missing")
        avg.append({"dataset": "Average", "title": "Average", "paper_dataset": "Average", "budget": b, "column": col,
                    "strategy": first["strategy"], "adapter": first["adapter"], "role": first["role"],
                    "mean": g["mean"].mean() if ok else np.nan, "std": np.nan, "n": int(g["n"].min()), "seeds": "",
                    "status": status})
    df = pd.concat([df, pd.DataFrame(avg)], ignore_index=True)
    # best per row and deltas of Ours over the strongest baseline
    df["best"] = False
    df["delta"] = np.nan
    for _, idx in df.groupby(["dataset", "budget"], sort=False).groups.items():
        g = df.loc[idx]
        ok = g[g["status"] == "ok"]
        if not ok.empty:
            df.loc[ok.index[ok["mean"] == ok["mean"].max()], "best"] = True
        base = ok[ok["role"] == "baseline"]
        if not base.empty:
            ours = ok[ok["role"] == "ours"]
            df.loc[ours.index, "delta"] = ours["mean"] - base["mean"].max()
    return df, warn


def _cell_text(row, digits: int = 1, bold=("**", "**"), pm: str = " ± ") -> str:
    if row["status"] == "dash":
        return "—"
    if row["status"] == "missing":
        return "n/a"
    txt = f"{row['mean']:.{digits}f}"
    if row["column"] != "Zero-shot" and not np.isnan(row["std"]):
        txt += f"{pm}{row['std']:.{digits}f}"
    if row["best"]:
        txt = f"{bold[0]}{txt}{bold[1]}"
    if not np.isnan(row["delta"]):
        txt += f" {_fmt_delta(row['delta'])}"
    return txt


def _layout(df: pd.DataFrame, preset, budgets, cell) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    columns = ["Zero-shot"] + [c.label for c in preset.columns]
    order = list(preset.datasets) + ["Average"]
    rows = []
    for d in order:
        for b in budgets:
            g = df[(df["dataset"] == d) & (df["budget"] == b)].set_index("column", drop=False)
            title = g["title"].iloc[0] if not g.empty else d
            rows.append((title, f"{b:g}%", [cell(g.loc[c]) if c in g.index else "n/a" for c in columns]))
    return columns, rows


def caption(preset, n_seeds: int, seeds, budgets) -> str:
    budgets_txt = "/".join(f"{b:g}" for b in budgets)
    seeds_txt = ",".join(str(s) for s in sorted(seeds))
    suite = "" if preset.suite == "paper" else f" — {preset.suite} suite (toy stand-ins for the paper's datasets)"
    title = preset.title
    paper_bb = f"({preset.backbone_title})"
    if preset.suite != "paper" and paper_bb in title:  # say which backbone the toy runs used
        title = title.replace(paper_bb, f"({preset.backbone.arch}; paper: {preset.backbone_title})")
    from albench.clip.profiles import profile_for

    prof = profile_for(preset.backbone.arch).caption()
    profile = f" Backbone profile, where it differs from the paper's values: {prof}." if prof else ""
    skipped = f" Columns skipped (plugin not installed): {'; '.join(preset.skipped_columns)}." if preset.skipped_columns else ""
    return (f"{title}{suite}. Accuracy (%) on the test split after {budgets_txt} % of the pool is labeled "
            f"(rounds of one trajectory); mean ± sample standard deviation (ddof = 1) over {n_seeds} seed(s) "
            f"(seeds {seeds_txt}). {PAPER_NOTE}.{profile}{skipped}")


def to_markdown(columns, rows, cap: str) -> str:
    lines = ["| Dataset | Budget | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    last = None
    for title, b, cells in rows:
        lines.append(f"| {title if title != last else ''} | {b} | " + " | ".join(cells) + " |")
        last = title
    return "\n".join(lines) + f"\n\n{cap}"


def _tex_escape(s: str) -> str:
    s = (s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
         .replace("#", r"\#"))
    return s.replace("Δ", r"$\Delta$").replace("—", "---")


def to_latex(columns, rows, cap: str, label: str) -> str:
    """booktabs table; needs \\usepackage{booktabs} (and graphicx for \\resizebox)."""
    cap_tex = _tex_escape(cap).replace("±", r"$\pm$").replace("−", "$-$")
    out = [r"\begin{table*}[t]", r"\centering", rf"\caption{{{cap_tex}}}", rf"\label{{tab:{label}}}",
           r"\resizebox{\textwidth}{!}{%", r"\begin{tabular}{ll" + "c" * len(columns) + "}", r"\toprule",
           "Dataset & Budget & " + " & ".join(_tex_escape(c) for c in columns) + r" \\", r"\midrule"]
    last = None
    for title, b, cells in rows:
        if last is not None and title != last:
            out.append(r"\midrule")
        tex_cells = []
        for c in cells:
            c = _tex_escape(c).replace(" ± ", r" $\pm$ ")
            c = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", c)
            c = re.sub(r" \(([+−][0-9.]+)\)", lambda m: r" {\scriptsize(" + m.group(1).replace("−", "$-$") + ")}", c)
            tex_cells.append(c)
        out.append(f"{_tex_escape(title) if title != last else ''} & {_tex_escape(b)} & " + " & ".join(tex_cells) + r" \\")
        last = title
    out += [r"\bottomrule", r"\end{tabular}}", r"\end{table*}"]
    return "\n".join(out) + "\n"


def compare_frame(df: pd.DataFrame, preset) -> pd.DataFrame:
    """Add the paper's numbers (paper_mean, paper_std) and ours − paper (diff) to a preset frame."""
    from albench.reporting.paper import paper_cell

    out = df.copy()
    pm, ps = [], []
    for _, r in out.iterrows():
        hit = paper_cell(preset.paper_table, r["paper_dataset"], r["budget"], r["column"]) if preset.paper_table else None
        pm.append(np.nan if hit is None else hit[0])
        ps.append(np.nan if hit is None else hit[1])
    out["paper_mean"], out["paper_std"] = pm, ps
    out["diff"] = out["mean"] - out["paper_mean"]
    return out


def _compare_text(row) -> str:
    ours = _cell_text(row, bold=("", ""))
    if np.isnan(row["paper_mean"]):
        return f"{ours} / paper —"
    paper = f"{row['paper_mean']:.1f}"
    diff = "" if np.isnan(row["diff"]) else f" (Δ {row['diff']:+.1f})"
    return f"{ours} / paper {paper}{diff}"


def preset_tables(preset_name: str, suite: str, results_dir, budgets=None, seeds=None, compare: str | None = None):
    """Everything `albench table --preset` renders: {"md", "tex", "csv" (DataFrame), "extras_md", ...}."""
    from albench.engine.grid import load_preset

    # Every column of the preset is shown (n/a without records): records may come from a machine
    # with more plugins installed than this one.
    preset = load_preset(preset_name, suite)
    results_dir = _records(results_dir)  # read once for the table and the extras
    budgets = list(budgets or preset.budgets)
    seeds = list(seeds or preset.seeds)
    df, warn = preset_frame(preset, results_dir, budgets, seeds)
    n_seeds = int(df.loc[(df["status"] == "ok") & (df["dataset"] != "Average"), "n"].max() or 0) if (df["status"] == "ok").any() else 0
    cap = caption(preset, n_seeds, seeds, budgets)
    columns, rows = _layout(df, preset, budgets, _cell_text)
    result = {"preset": preset, "frame": df, "warnings": warn, "md": to_markdown(columns, rows, cap),
              "tex": to_latex(columns, rows, cap, preset.slug), "columns": columns, "rows": rows, "caption": cap}
    if compare == "paper":
        cdf = compare_frame(df, preset)
        ccols, crows = _layout(cdf, preset, budgets, _compare_text)
        ccap = (f"{preset.title}: ours / the paper's published number (Δ = ours − paper). "
                + ("The toy suite's numbers are not comparable to the paper's datasets; the pairing shows which "
                   "paper cell each toy cell stands for. " if preset.suite != "paper" else "")
                + "Ours: mean ± sample std over seeds.")
        result.update(frame=cdf, compare_md=to_markdown(ccols, crows, ccap),
                      compare_tex=to_latex(ccols, crows, ccap, preset.slug + "_vs_paper"))
    result["extras"] = extras_frame(preset, results_dir, budgets, seeds)
    result["extras_md"] = extras_markdown(result["extras"], preset)
    return result


def write_preset_tables(preset_name: str, suite: str, results_dir, out_dir, budgets=None, seeds=None,
                        compare: str | None = None) -> tuple[list[Path], str]:
    """Write <slug>.md/.tex/.csv (+ _vs_paper.*, _extras.*) into ``out_dir``; return paths and the Markdown."""
    t = preset_tables(preset_name, suite, results_dir, budgets, seeds, compare)
    slug = t["preset"].slug
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from albench.api.errors import AlbenchError

        raise AlbenchError(f"Cannot write reports to {out}: {exc.strerror}; pass --out.") from exc
    paths = []

    def put(name: str, text: str) -> None:
        p = out / name
        p.write_text(text)
        paths.append(p)

    put(f"{slug}.md", t["md"] + "\n")
    put(f"{slug}.tex", t["tex"])
    csv_cols = ["dataset", "title", "paper_dataset", "budget", "column", "strategy", "adapter", "role", "mean", "std",
                "n", "seeds", "status", "best", "delta"] + (["paper_mean", "paper_std", "diff"] if compare else [])
    t["frame"][csv_cols].to_csv(out / f"{slug}.csv", index=False, float_format="%.4f")
    paths.append(out / f"{slug}.csv")
    if compare:
        put(f"{slug}_vs_paper.md", t["compare_md"] + "\n")
        put(f"{slug}_vs_paper.tex", t["compare_tex"])
    put(f"{slug}_extras.md", t["extras_md"] + "\n")
    t["extras"].to_csv(out / f"{slug}_extras.csv", index=False, float_format="%.4f")
    paths.append(out / f"{slug}_extras.csv")
    md = t["md"] + ("\n\n" + t["compare_md"] if compare else "") + "\n\n" + t["extras_md"]
    if t["warnings"]:
        md += "\n\nwarnings:\n" + "\n".join(f"- {w}" for w in t["warnings"])
    return paths, md


# --- figures the paper does not report ---------------------------------------------

def aubc(rounds: list[dict]) -> float:
    """Area under the accuracy-vs-labeled-% curve over the labeled rounds, divided by the %
    range: the mean accuracy across the budget range (trapezoids; one round = its accuracy)."""
    x = np.array([r["budget_pct"] for r in rounds], dtype=float)
    y = np.array([r["accuracy"] for r in rounds], dtype=float)
    if len(x) < 2 or x[-1] == x[0]:
        return float(y.mean())
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def extras_frame(preset, results_dir, budgets, seeds) -> pd.DataFrame:
    """Per (dataset, column, seed): AUBC, classes covered at each budget, mean selection seconds per round."""
    seeds = set(seeds)
    rows = []
    for rec in _records(results_dir):
        if rec["dataset"] not in preset.datasets or rec["seed"] not in seeds:
            continue
        if rec.get("backbone", {}).get("arch") != preset.backbone.arch:
            continue
        for c in preset.columns:
            if (rec["strategy"], rec["adapter"]) != (c.strategy, c.adapter):
                continue
            base = {"dataset": rec["dataset"], "column": c.label, "seed": rec["seed"], "group": config_group(rec),
                    "num_classes": rec["num_classes"]}
            rows.append({**base, "metric": "aubc", "budget": np.nan, "value": aubc(rec["rounds"])})
            rows.append({**base, "metric": "select_seconds", "budget": np.nan,
                         "value": float(np.mean([r["seconds"]["select"] for r in rec["rounds"]]))})
            for b in budgets:
                hit = [r for r in rec["rounds"] if r["round"] == _budget_round(rec, b)]
                if hit and hit[0].get("classes_covered") is not None:
                    rows.append({**base, "metric": "classes_covered", "budget": b, "value": float(hit[0]["classes_covered"])})
    return pd.DataFrame(rows, columns=["dataset", "column", "seed", "group", "num_classes", "metric", "budget", "value"])


def extras_markdown(ex: pd.DataFrame, preset) -> str:
    if ex.empty:
        return "No records for the extra figures yet."
    labels = [c.label for c in preset.columns]
    # one configuration per (dataset, column): the one with most seeds
    keep = ex.groupby(["dataset", "column", "group"])["seed"].nunique().reset_index()
    keep = keep.sort_values("seed").groupby(["dataset", "column"]).tail(1)
    ex = ex.merge(keep[["dataset", "column", "group"]], on=["dataset", "column", "group"])
    out = []

    def block(title: str, metric: str, fmt, by_budget: bool) -> None:
        sub = ex[ex["metric"] == metric]
        if sub.empty:
            return
        cols = [c for c in labels if c in set(sub["column"])]
        out.append(f"**{title}**\n")
        out.append("| Dataset |" + (" Budget |" if by_budget else "") + " " + " | ".join(cols) + " |")
        out.append("|---|" + ("---|" if by_budget else "") + "---|" * len(cols))
        keys = ["dataset", "budget"] if by_budget else ["dataset"]
        for key, g in sub.groupby(keys, sort=False, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            cells = []
            for c in cols:
                v = g[g["column"] == c]["value"].to_numpy()
                cells.append(fmt(v, g) if v.size else "n/a")
            head = f"| {preset.titles.get(key[0], key[0])} |" + (f" {key[1]:g}% |" if by_budget else "")
            out.append(head + " " + " | ".join(cells) + " |")
        out.append("")

    def ms(v, g):
        return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if v.size > 1 else f"{v.mean():.1f}"

    block("Area under the budget curve (mean accuracy over the labeled rounds, %; mean ± sample std over seeds)",
          "aubc", ms, False)
    block("Class coverage: classes with at least one label (mean over seeds / number of classes)", "classes_covered",
          lambda v, g: f"{v.mean():.1f}/{int(g['num_classes'].iloc[0])}", True)
    block("Selection time per round (seconds, mean over rounds and seeds)", "select_seconds",
          lambda v, g: f"{v.mean():.3f}", False)
    return "\n".join(out).rstrip()
