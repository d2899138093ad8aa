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

from albench.api.atomic import atomic_write
from albench.engine.records import iter_records
from albench.reporting.mechanism import metric_title, metric_value
from albench.reporting.cells import RULE_TEXT, chosen_records, config_id, labelled_cell_key, seeds_text, select

STD_NOTE = "± = sample standard deviation over seeds (ddof = 1)"


config_group = config_id  # the name other modules and tests use


def load_rounds(source, budgets=None, seeds=None, metric: str = "accuracy") -> pd.DataFrame:
    """One row per (run, round), plus a round-0 zero-shot row per run.

    ``source`` is a results directory or records already read; ``budgets`` keeps only the rounds that
    stand for those budgets (% of the pool), ``seeds`` only those seeds. With another ``metric``
    (``albench.reporting.mechanism.METRICS``) its value fills the ``accuracy`` column (NaN where a
    record lacks it; the zero-shot row has none).
    """
    rows = []
    for rec in _records(source):
        if seeds is not None and rec["seed"] not in set(seeds):
            continue
        base = {
            "dataset": rec["dataset"],
            "adapter": rec["adapter"],
            "strategy": rec["strategy"],
            "label": rec.get("label", rec["strategy"]),
            "seed": rec["seed"],
            "backbone": rec["config"]["backbone"],
            "group": config_group(rec),
            "run_id": rec["run_id"],
        }
        rows.append(
            {
                **base,
                "round": 0,
                "budget_pct": 0.0,
                "accuracy": rec["zero_shot_accuracy"] if metric == "accuracy" else np.nan,
            }
        )
        keep = None if budgets is None else {_budget_round(rec, b) for b in budgets}
        for r in rec["rounds"]:
            if keep is not None and r["round"] not in keep:
                continue
            v = metric_value(r, metric)
            rows.append(
                {
                    **base,
                    "round": r["round"],
                    "budget_pct": r["budget_pct"],
                    "accuracy": np.nan if v is None else v,
                    "select_seconds": r["seconds"]["select"],
                    "classes_covered": r.get("classes_covered"),
                }
            )
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


def simple_table(
    source, budgets=None, seeds=None, configs=(), metric: str = "accuracy"
) -> tuple[str, pd.DataFrame, list[str]]:
    """Markdown: rows = dataset / adapter / round, columns = strategy labels (plus zero-shot).

    One configuration per cell (``albench.reporting.cells``). Returns the Markdown, the long frame
    (mean, std, n, seeds per cell) and one note per cell that had several configurations.
    """
    recs, notes = chosen_records(_records(source), configs, key=labelled_cell_key)
    df = load_rounds(recs, budgets, seeds, metric)
    if df.empty or not (df["round"] > 0).any():
        what = "" if budgets is None and seeds is None else " for these budgets/seeds"
        return f"No run records found{what}.", pd.DataFrame(), notes
    s = summarise(df)
    seeds_of = (
        df.groupby(["dataset", "adapter", "label", "group", "round"])["seed"]
        .apply(lambda v: ",".join(str(x) for x in sorted(set(v))))
        .reset_index(name="seeds")
    )
    s = s.merge(seeds_of, on=["dataset", "adapter", "label", "group", "round"])
    s["column"] = s["label"]
    s["cell"] = [format_cell(m, sd) for m, sd in zip(s["mean"], s["std"])]
    zs = {
        key: format_cell(*_pool_zero_shot(df, key))
        for key in df[["dataset", "adapter"]].drop_duplicates().itertuples(index=False)
    }
    body = s[s["round"] > 0]
    table = body.pivot_table(index=["dataset", "adapter", "round"], columns="column", values="cell", aggfunc="first")
    budget = body.groupby(["dataset", "adapter", "round"])["budget_pct"].mean()
    table.insert(0, "labels %", budget.map(lambda v: f"{v:.1f}"))
    table.insert(1, "zero-shot", [zs.get((d, a), "—") for d, a, _ in table.index])
    lines = [
        "| dataset | adapter | round | " + " | ".join(table.columns) + " |",
        "|" + "---|" * (3 + len(table.columns)),
    ]
    for (d, a, r), row in table.iterrows():
        lines.append(f"| {d} | {a} | {r} | " + " | ".join("—" if pd.isna(v) else str(v) for v in row.values) + " |")
    lines.append(
        f"\n{metric_title(metric)}; {STD_NOTE}; {_seed_phrase(body)}."
        + (f" {RULE_TEXT[0].upper() + RULE_TEXT[1:]} (listed below)." if notes else "")
    )
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines), body.drop(columns=["cell"]), notes


def write_simple_table(
    source, out_dir, budgets=None, seeds=None, configs=(), metric: str = "accuracy"
) -> tuple[list[Path], str]:
    """Write ``table.md`` and ``table.csv`` (the simple table; ``table_<metric>.*`` for another metric) into
    ``out_dir`` (None: nothing written); return paths and the Markdown."""
    md, frame, _ = simple_table(source, budgets, seeds, configs, metric)
    if frame.empty or out_dir is None:
        return [], md
    out = _out_dir(out_dir)
    name = "table" if metric == "accuracy" else f"table_{metric}"
    return [
        atomic_write(out / f"{name}.md", md + "\n"),
        atomic_write(out / f"{name}.csv", frame.to_csv(index=False, float_format="%.4f")),
    ], md


def _out_dir(out_dir) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from albench.api.errors import AlbenchError

        raise AlbenchError(f"Cannot write reports to {out}: {exc.strerror}; pass --out.") from exc
    return out


def _seed_phrase(frame: pd.DataFrame) -> str:
    """'over 3 seeds (seeds 1, 2, 3)', '1 seed (seed 1)', or the range per cell when cells differ.

    Counted from the cells actually shown (their ``n`` and ``seeds``), never from the seeds asked for.
    """
    if frame.empty:
        return "over no seeds"
    all_seeds = sorted({int(x) for v in frame["seeds"] for x in str(v).split(",") if x})
    lo, hi = int(frame["n"].min()), int(frame["n"].max())
    listed = ", ".join(map(str, all_seeds))
    one = "; a cell with one seed shows no ±" if lo == 1 else ""
    if lo == hi == len(all_seeds):
        return f"over {seeds_text(all_seeds)}{one}"
    per_cell = f"{lo} seed{'s' if lo > 1 else ''}" if lo == hi else f"{lo}–{hi} seeds"
    return f"over {per_cell} per cell (seed{'s' if len(all_seeds) > 1 else ''} {listed} present{one})"


def _pool_zero_shot(df: pd.DataFrame, key) -> tuple[float, float]:
    d, a = key
    z = df[(df["dataset"] == d) & (df["adapter"] == a) & (df["round"] == 0)].drop_duplicates(["backbone", "seed"])
    vals = z.groupby("seed")["accuracy"].first()
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")


# --- the paper's table layout (presets) ------------------------------------------

PAPER_NOTE = (
    "— = not reported, as in the paper (first round random by construction); n/a = no records yet; "
    "bold = best in row; (+x) = Ours over the strongest baseline in that row"
)


def _fmt_delta(d: float) -> str:
    return f"(+{d:.1f})" if d >= 0 else f"(−{abs(d):.1f})"


def _budget_round(rec: dict, budget: float) -> int:
    proto = rec["config"]["protocol"]
    if proto.get("round_budget") is not None:
        return int(budget)
    return int(round(budget / (proto["round_fraction"] * 100.0)))


def _records(source) -> list[dict]:
    """A results directory, or records already read (the report reads them once)."""
    if isinstance(source, (str, Path)):
        return [rec for _, rec in iter_records(Path(source))]
    return list(source)


def preset_cells(preset, source, seeds=None, configs=()) -> dict:
    """The preset's cells: {(dataset, strategy, adapter): Cell} over the records of its datasets, seeds and
    backbone, one configuration each (``albench.reporting.cells.select``)."""
    seeds = set(seeds or preset.seeds)
    recs = [
        r
        for r in _records(source)
        if r["dataset"] in preset.datasets
        and r["seed"] in seeds
        and r.get("backbone", {}).get("arch") == preset.backbone.arch
    ]
    plain = {(c.strategy, c.adapter) for c in preset.columns if not (c.strategy_options or c.adapter_options)}
    out = {
        k[:3]: cell for k, cell in select([r for r in recs if (r["strategy"], r["adapter"]) in plain], configs).items()
    }
    for c in preset.columns:  # columns that fix options (sweeps, ablations): only their own configuration
        if c.strategy_options or c.adapter_options:
            mine = [r for r in recs if (r["strategy"], r["adapter"]) == (c.strategy, c.adapter) and c.matches(r)]
            out.update({(k[0], c.label): cell for k, cell in select(mine, configs, strict=False).items()})
    return out


def cell_of(cells: dict, dataset: str, column):
    """The cell of a preset column (from ``preset_cells``) for one dataset, or None."""
    if column.strategy_options or column.adapter_options:
        return cells.get((dataset, column.label))
    return cells.get((dataset, column.strategy, column.adapter))


def preset_frame(
    preset, results_dir, budgets=None, seeds=None, configs=(), metric: str = "accuracy"
) -> tuple[pd.DataFrame, list[str]]:
    """Long table for a preset: one row per (dataset, budget, column) with mean, std (ddof=1), n.

    Includes the Zero-shot column (budget 0 of every run; deterministic, so one value per
    dataset) and the per-budget Average over datasets (only when every dataset has a value).
    Each cell holds one configuration (``preset_cells``); ``config`` names it.
    """
    budgets = list(budgets or preset.budgets)
    cells = preset_cells(preset, results_dir, seeds, configs)
    warn: list[str] = []
    rows = []
    for d in preset.datasets:
        chosen_all: list[dict] = []
        for c in preset.columns:
            cell = cell_of(cells, d, c)
            recs = cell.records if cell else []
            if cell and cell.note(f"{d} {c.label}"):
                warn.append(cell.note(f"{d} {c.label}"))
            chosen_all += recs
            for b in budgets:
                base = {
                    "dataset": d,
                    "title": preset.titles[d],
                    "paper_dataset": preset.paper_title(d),
                    "budget": b,
                    "column": c.label,
                    "strategy": c.strategy,
                    "adapter": c.adapter,
                    "role": c.role,
                    "config": cell.chosen.id if cell else "",
                }
                if b in c.dash_budgets:
                    rows.append({**base, "mean": np.nan, "std": np.nan, "n": 0, "seeds": "", "status": "dash"})
                    continue
                vals = {}
                for r in recs:
                    rr = _budget_round(r, b)
                    hit = [x for x in r["rounds"] if x["round"] == rr]
                    if hit and metric_value(hit[0], metric) is not None:
                        vals[r["seed"]] = metric_value(hit[0], metric)
                v = np.array([vals[s] for s in sorted(vals)], dtype=float)
                rows.append(
                    {
                        **base,
                        "mean": v.mean() if v.size else np.nan,
                        "std": v.std(ddof=1) if v.size > 1 else np.nan,
                        "n": int(v.size),
                        "seeds": ",".join(str(s) for s in sorted(vals)),
                        "status": "ok" if v.size else "missing",
                    }
                )
        zs: dict[int, set[float]] = {}
        for r in chosen_all:
            zs.setdefault(r["seed"], set()).add(round(r["zero_shot_accuracy"], 6))
        if any(len(v) > 1 for v in zs.values()):
            warn.append(f"{d}: zero-shot accuracy differs between runs of one seed (different backbones?)")
        zv = np.array([np.mean(list(v)) for v in zs.values()], dtype=float) if metric == "accuracy" else np.zeros(0)
        for b in budgets:
            rows.append(
                {
                    "dataset": d,
                    "title": preset.titles[d],
                    "paper_dataset": preset.paper_title(d),
                    "budget": b,
                    "column": "Zero-shot",
                    "strategy": "zero-shot",
                    "adapter": "-",
                    "role": "zero-shot",
                    "mean": zv.mean() if zv.size else np.nan,
                    "std": zv.std(ddof=1) if zv.size > 1 else np.nan,
                    "n": int(zv.size),
                    "seeds": ",".join(str(s) for s in sorted(zs)),
                    "status": "ok" if zv.size else "missing",
                    "config": "",
                }
            )
    df = pd.DataFrame(rows)
    avg = []
    for (col, b), g in df.groupby(["column", "budget"], sort=False):
        first = g.iloc[0]
        ok = (g["status"] == "ok").all()
        status = "dash" if (g["status"] == "dash").all() else ("ok" if ok else "missing")
        avg.append(
            {
                "dataset": "Average",
                "title": "Average",
                "paper_dataset": "Average",
                "budget": b,
                "column": col,
                "strategy": first["strategy"],
                "adapter": first["adapter"],
                "role": first["role"],
                "mean": g["mean"].mean() if ok else np.nan,
                "std": np.nan,
                "n": int(g["n"].min()),
                "seeds": "",
                "status": status,
                "config": "",
            }
        )
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
    labels = ["Zero-shot"] + [c.label for c in preset.columns]
    columns = ["Zero-shot"] + [c.label + ("†" if c.note else "") for c in preset.columns]  # † = see caption
    order = list(preset.datasets) + ["Average"]
    rows = []
    for d in order:
        for b in budgets:
            g = df[(df["dataset"] == d) & (df["budget"] == b)].set_index("column", drop=False)
            title = g["title"].iloc[0] if not g.empty else d
            rows.append((title, f"{b:g}%", [cell(g.loc[c]) if c in g.index else "n/a" for c in labels]))
    return columns, rows


def display_title(preset) -> str:
    """The preset's title, naming the backbone the runs used when it is not the paper's."""
    title = preset.title
    paper_bb = f"({preset.backbone_title})"
    if preset.suite != "paper" and paper_bb in title:  # say which backbone the toy runs used
        title = title.replace(paper_bb, f"({preset.backbone.arch}; paper: {preset.backbone_title})")
    return title


def caption(preset, frame: pd.DataFrame, budgets, several_configs: bool = False, metric: str = "accuracy") -> str:
    """The table's caption: what is shown, over which seeds (counted from the cells shown), which backbone."""
    budgets_txt = "/".join(f"{b:g}" for b in budgets)
    suite = "" if preset.suite == "paper" else f" — {preset.suite} suite (toy stand-ins for the paper's datasets)"
    title = display_title(preset)
    from albench.clip.profiles import profile_for

    prof = profile_for(preset.backbone.arch).caption()
    profile = f" Backbone profile, where it differs from the paper's values: {prof}." if prof else ""
    skipped = (
        f" Columns skipped (plugin not installed): {'; '.join(preset.skipped_columns)}."
        if preset.skipped_columns
        else ""
    )
    shown = frame[(frame["status"] == "ok") & (frame["dataset"] != "Average") & (frame["column"] != "Zero-shot")]
    seeds = _seed_phrase(shown) if not shown.empty else "no records yet"
    choice = (
        f" {RULE_TEXT[0].upper() + RULE_TEXT[1:]}; the others are listed below the table." if several_configs else ""
    )
    notes = "".join(f" {c.label}†: {c.note}." for c in preset.columns if c.note)
    what = (
        metric_title(metric)
        if metric == "accuracy"
        else (
            f"{metric_title(metric)} (metric {metric}; the diagnostics of round r judge the model that selected its labels)"
        )
    )
    return (
        f"{title}{suite}. {what} after {budgets_txt} % of the pool is labeled "
        f"(rounds of one trajectory); mean ± sample standard deviation (ddof = 1) {seeds}. "
        f"{PAPER_NOTE}.{profile}{choice}{notes}{skipped}"
    )


def to_markdown(columns, rows, cap: str) -> str:
    lines = ["| Dataset | Budget | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    last = None
    for title, b, cells in rows:
        lines.append(f"| {title if title != last else ''} | {b} | " + " | ".join(cells) + " |")
        last = title
    return "\n".join(lines) + f"\n\n{cap}"


def _tex_escape(s: str) -> str:
    s = (
        s.replace("\\", r"\textbackslash{}")
        .replace("_", r"\_")
        .replace("%", r"\%")
        .replace("&", r"\&")
        .replace("#", r"\#")
    )
    return s.replace("Δ", r"$\Delta$").replace("—", "---")


def to_latex(columns, rows, cap: str, label: str) -> str:
    """booktabs table; needs \\usepackage{booktabs} (and graphicx for \\resizebox)."""
    cap_tex = _tex_escape(cap).replace("±", r"$\pm$").replace("−", "$-$")
    out = [
        r"\begin{table*}[t]",
        r"\centering",
        rf"\caption{{{cap_tex}}}",
        rf"\label{{tab:{label}}}",
        r"\resizebox{\textwidth}{!}{%",
        r"\begin{tabular}{ll" + "c" * len(columns) + "}",
        r"\toprule",
        "Dataset & Budget & " + " & ".join(_tex_escape(c) for c in columns) + r" \\",
        r"\midrule",
    ]
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
        out.append(
            f"{_tex_escape(title) if title != last else ''} & {_tex_escape(b)} & " + " & ".join(tex_cells) + r" \\"
        )
        last = title
    out += [r"\bottomrule", r"\end{tabular}}", r"\end{table*}"]
    return "\n".join(out) + "\n"


def compare_frame(df: pd.DataFrame, preset) -> pd.DataFrame:
    """Add the paper's numbers (paper_mean, paper_std) and ours − paper (diff) to a preset frame."""
    from albench.reporting.paper import paper_cell

    out = df.copy()
    pm, ps = [], []
    for _, r in out.iterrows():
        hit = (
            paper_cell(preset.paper_table, r["paper_dataset"], r["budget"], r["column"]) if preset.paper_table else None
        )
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


def preset_tables(
    preset_name: str,
    suite: str,
    results_dir,
    budgets=None,
    seeds=None,
    compare: str | None = None,
    configs=(),
    metric: str = "accuracy",
):
    """Everything `albench table --preset` renders: {"md", "tex", "csv" (DataFrame), "extras_md", ...}.

    ``compare="paper"`` puts the paper's published numbers beside ours; refused on a suite other
    than "paper" (toy numbers do not estimate the paper's). ``configs``: config ids to prefer in
    cells that hold several configurations.
    """
    from albench.api.errors import AlbenchError
    from albench.engine.grid import load_preset

    # Every column of the preset is shown (n/a without records): records may come from a machine
    # with more plugins installed than this one.
    preset = load_preset(preset_name, suite)
    if compare == "paper" and preset.suite != "paper":
        raise AlbenchError(
            f"--compare paper needs --suite paper: the {preset.suite} suite's datasets are stand-ins, "
            f"so differences to the paper's numbers would mean nothing."
        )
    results_dir = _records(results_dir)  # read once for the table and the extras
    budgets = list(budgets or preset.budgets)
    seeds = list(seeds or preset.seeds)
    if compare == "paper" and metric != "accuracy":
        raise AlbenchError(f"--compare paper compares accuracy; it does not combine with --metric {metric}.")
    df, warn = preset_frame(preset, results_dir, budgets, seeds, configs, metric)
    cap = caption(preset, df, budgets, several_configs=bool(warn), metric=metric)
    columns, rows = _layout(df, preset, budgets, _cell_text)
    notes = "".join(f"\n- {w}" for w in warn)
    result = {
        "preset": preset,
        "frame": df,
        "warnings": warn,
        "md": to_markdown(columns, rows, cap) + notes,
        "tex": to_latex(columns, rows, cap, preset.slug),
        "columns": columns,
        "rows": rows,
        "caption": cap,
    }
    if compare == "paper":
        cdf = compare_frame(df, preset)
        ccols, crows = _layout(cdf, preset, budgets, _compare_text)
        ccap = (
            f"{preset.title}: ours / the paper's published number (Δ = ours − paper). "
            "Ours: mean ± sample std over seeds."
        )
        result.update(
            frame=cdf,
            compare_md=to_markdown(ccols, crows, ccap),
            compare_tex=to_latex(ccols, crows, ccap, preset.slug + "_vs_paper"),
        )
    result["extras"] = extras_frame(preset, results_dir, budgets, seeds, configs)
    result["extras_md"] = extras_markdown(result["extras"], preset)
    return result


def write_preset_tables(
    preset_name: str,
    suite: str,
    results_dir,
    out_dir,
    budgets=None,
    seeds=None,
    compare: str | None = None,
    configs=(),
    metric: str = "accuracy",
) -> tuple[list[Path], str]:
    """Write <slug>.md/.tex/.csv (+ _vs_paper.*, _extras.*) into ``out_dir``; return paths and the Markdown.

    With a ``metric`` other than accuracy the files are named <slug>_<metric>.*."""
    t = preset_tables(preset_name, suite, results_dir, budgets, seeds, compare, configs, metric)
    slug = t["preset"].slug + ("" if metric == "accuracy" else f"_{metric}")
    out = _out_dir(out_dir)
    files: dict[str, str] = {}  # rendered in full first, then written: a kill leaves old or new files, never partial

    def put(name: str, text: str) -> None:
        files[name] = text

    def csv(frame: pd.DataFrame) -> str:
        return frame.to_csv(index=False, float_format="%.4f")

    put(f"{slug}.md", t["md"] + "\n")
    put(f"{slug}.tex", t["tex"])
    csv_cols = [
        "dataset",
        "title",
        "paper_dataset",
        "budget",
        "column",
        "strategy",
        "adapter",
        "role",
        "mean",
        "std",
        "n",
        "seeds",
        "config",
        "status",
        "best",
        "delta",
    ] + (["paper_mean", "paper_std", "diff"] if compare else [])
    put(f"{slug}.csv", csv(t["frame"][csv_cols]))
    if compare:
        put(f"{slug}_vs_paper.md", t["compare_md"] + "\n")
        put(f"{slug}_vs_paper.tex", t["compare_tex"])
    put(f"{slug}_extras.md", t["extras_md"] + "\n")
    put(f"{slug}_extras.csv", csv(t["extras"]))
    paths = [atomic_write(out / name, text) for name, text in files.items()]
    md = t["md"] + ("\n\n" + t["compare_md"] if compare else "") + "\n\n" + t["extras_md"]
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


def extras_frame(preset, results_dir, budgets, seeds, configs=()) -> pd.DataFrame:
    """Per (dataset, column, seed): AUBC, classes covered at each budget, mean selection seconds per round.

    Over the same cells (and so the same configuration of each column) as the preset's table.
    """
    cells = preset_cells(preset, results_dir, seeds, configs)
    rows = []
    for d in preset.datasets:
        for c in preset.columns:
            cell = cell_of(cells, d, c)
            for rec in cell.records if cell else []:
                rows += _extra_rows(rec, c.label, budgets)
    return pd.DataFrame(
        rows, columns=["dataset", "column", "seed", "group", "num_classes", "metric", "budget", "value"]
    )


def _extra_rows(rec: dict, label: str, budgets) -> list[dict]:
    rows = []
    base = {
        "dataset": rec["dataset"],
        "column": label,
        "seed": rec["seed"],
        "group": config_group(rec),
        "num_classes": rec["num_classes"],
    }
    rows.append({**base, "metric": "aubc", "budget": np.nan, "value": aubc(rec["rounds"])})
    rows.append(
        {
            **base,
            "metric": "select_seconds",
            "budget": np.nan,
            "value": float(np.mean([r["seconds"]["select"] for r in rec["rounds"]])),
        }
    )
    for b in budgets:
        hit = [r for r in rec["rounds"] if r["round"] == _budget_round(rec, b)]
        if hit and hit[0].get("classes_covered") is not None:
            rows.append({**base, "metric": "classes_covered", "budget": b, "value": float(hit[0]["classes_covered"])})
    return rows


def extras_markdown(ex: pd.DataFrame, preset) -> str:
    if ex.empty:
        return "No records for the extra figures yet."
    labels = [c.label for c in preset.columns]  # one configuration per cell already (extras_frame)
    out = []

    def block(title: str, metric: str, fmt, by_budget: bool) -> None:
        sub = ex[ex["metric"] == metric]
        if sub.empty:
            return
        cols = [c for c in labels if c in set(sub["column"])]
        out.append(f"**{title}**\n")
        marked = {c.label: c.label + "†" for c in preset.columns if c.note}
        out.append(
            "| Dataset |" + (" Budget |" if by_budget else "") + " " + " | ".join(marked.get(c, c) for c in cols) + " |"
        )
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

    block(
        "Area under the budget curve (mean accuracy over the labeled rounds, %; mean ± sample std over seeds)",
        "aubc",
        ms,
        False,
    )
    block(
        "Class coverage: classes with at least one label (mean over seeds / number of classes)",
        "classes_covered",
        lambda v, g: f"{v.mean():.1f}/{int(g['num_classes'].iloc[0])}",
        True,
    )
    block(
        "Selection time per round (seconds, mean over rounds and seeds)",
        "select_seconds",
        lambda v, g: f"{v.mean():.3f}",
        False,
    )
    notes = [f"{c.label}†: {c.note}." for c in preset.columns if c.note and c.label in set(ex["column"])]
    if notes:
        out.append(" ".join(notes))
    return "\n".join(out).rstrip()
