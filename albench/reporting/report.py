"""`albench report`: a static HTML page (reports/index.html) over a results directory.

Accuracy-vs-budget curves per dataset and adapter (matplotlib; mean over seeds
with a ±1 sample-std band; zero-shot at 0 %), the preset tables that have any
records (Markdown tables rendered as HTML), the extra figures (area under the
budget curve, class coverage, selection time) and one metadata row per run
(versions, git SHA, device, timings). No server, no JavaScript libraries (one inline line marks decoded
figures): one HTML file plus PNGs in reports/figures/.
"""

from __future__ import annotations

import html
import re
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from albench.api.atomic import atomic_write
from albench.api.errors import AlbenchError
from albench.engine.records import iter_records
from albench.reporting.cells import chosen_records, labelled_cell_key
from albench.reporting.tables import STD_NOTE, config_group, display_title


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def method_name(rec: dict) -> str:
    """A run's method as figures name it: the preset column label, else "strategy × adapter"."""
    label = rec.get("label") or rec["strategy"]
    return label if label != rec["strategy"] else f"{rec['strategy']} × {rec['adapter']}"


def curve_frame(records: list[dict]) -> pd.DataFrame:
    """Per (dataset, adapter, arch, label, round): mean and sample std of accuracy over seeds, seed count.

    ``records`` are one configuration per cell already (``albench.reporting.cells.chosen_records``);
    round 0 is zero-shot. ``method`` is the name figures use (``method_name``).
    """
    rows = []
    for rec in records:
        base = {
            "dataset": rec["dataset"],
            "adapter": rec["adapter"],
            "label": rec.get("label") or rec["strategy"],
            "method": method_name(rec),
            "arch": rec.get("backbone", {}).get("arch", "?"),
            "seed": rec["seed"],
            "config": config_group(rec),
        }
        rows.append({**base, "round": 0, "pct": 0.0, "labeled": 0, "acc": rec["zero_shot_accuracy"]})
        rows += [
            {**base, "round": r["round"], "pct": r["budget_pct"], "labeled": r["labeled"], "acc": r["accuracy"]}
            for r in rec["rounds"]
        ]
    cols = ["dataset", "adapter", "arch", "label", "method", "config", "round", "pct", "labeled", "mean", "std", "n"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    return (
        df.groupby(["dataset", "adapter", "arch", "label", "method", "config", "round"], sort=True)
        .agg(
            pct=("pct", "mean"),
            labeled=("labeled", "mean"),
            mean=("acc", "mean"),
            std=("acc", "std"),
            n=("acc", "size"),
        )
        .reset_index()
    )


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(records: list[dict], fig_dir: Path, colors: dict[str, str] | None = None) -> list[tuple[str, Path]]:
    """One PNG per (dataset, backbone): accuracy vs labels for every method on the same axes.

    Mean over seeds with a ±1 sample-std band; the zero-shot accuracy as a dashed line (the
    y-axis always shows it); labels on the x-axis, % of the pool on top.
    """
    from albench.reporting.figures import ZERO_SHOT_COLOR, method_colors

    plt = _plt()
    cf = curve_frame(records)
    colors = colors or method_colors(cf["method"].unique())
    out = []
    for (d, arch), g in cf.groupby(["dataset", "arch"], sort=True):
        fig, ax = plt.subplots(figsize=(5.6, 3.8), dpi=110)
        body = g[g["round"] > 0]
        n_adapters = body.groupby("method")["adapter"].nunique()
        styles = ["-", "--", ":", "-."]
        for (method, adapter), st in body.groupby(["method", "adapter"], sort=False):
            # the same column label with two adapters (Random in Tables 1 and 2): one colour, told apart by style
            several = n_adapters[method] > 1
            k = sorted(body[body["method"] == method]["adapter"].unique()).index(adapter) if several else 0
            name = f"{method} ({adapter})" if several else method
            ax.plot(
                st["labeled"],
                st["mean"],
                marker="o",
                ms=3,
                lw=1.4,
                color=colors.get(method),
                ls=styles[k % len(styles)],
                label=f"{name} (n={int(st['n'].max())})",
            )
            band = st["std"].fillna(0.0)
            ax.fill_between(st["labeled"], st["mean"] - band, st["mean"] + band, alpha=0.15, color=colors.get(method))
        zs = g[g["round"] == 0]["mean"].mean()
        ax.axhline(zs, color=ZERO_SHOT_COLOR, ls="--", lw=1.1, label=f"zero-shot ({zs:.1f})")
        lo = min(zs, float((body["mean"] - body["std"].fillna(0)).min())) if not body.empty else zs
        hi = max(zs, float((body["mean"] + body["std"].fillna(0)).max())) if not body.empty else zs
        pad = max(1.0, 0.08 * (hi - lo))
        ax.set_ylim(lo - pad, hi + pad)
        ratio = (body["labeled"] / body["pct"]).median() if not body.empty and (body["pct"] > 0).all() else None
        if ratio and np.isfinite(ratio) and ratio > 0:
            sec = ax.secondary_xaxis("top", functions=(lambda x, r=ratio: x / r, lambda p, r=ratio: p * r))
            sec.set_xlabel("% of the pool", fontsize=8)
            sec.tick_params(labelsize=7)
        ax.set_xlabel("labeled samples")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{d} — {arch}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower right", ncol=2 if body["method"].nunique() > 5 else 1)
        fig.tight_layout()
        path = fig_dir / f"curve_{_slug(d)}_{_slug(arch)}.png"
        _save_figure(fig, path)
        plt.close(fig)
        out.append((f"{d} · {arch}", path))
    return out


def aubc_frame(records: list[dict]) -> pd.DataFrame:
    """Area under the budget curve per (dataset, label × adapter): mean and sample std over seeds, seed count."""
    from albench.reporting.tables import aubc

    rows = [
        {
            "dataset": r["dataset"],
            "label": f"{r.get('label') or r['strategy']} × {r['adapter']}",
            "method": method_name(r),
            "config": config_group(r),
            "v": aubc(r["rounds"]),
        }
        for r in records
    ]
    if not rows:
        return pd.DataFrame(columns=["dataset", "label", "method", "config", "mean", "std", "n"])
    return (
        pd.DataFrame(rows)
        .groupby(["dataset", "label", "method", "config"])["v"]
        .agg(mean="mean", std="std", n="size")
        .reset_index()
    )


def _save_figure(fig, path: Path) -> None:
    """A PNG written through the atomic writer: a killed report leaves the old figure or the new one."""
    atomic_write(path, lambda f: fig.savefig(f, format="png"))


def aubc_figure(records: list[dict], fig_dir: Path, colors: dict[str, str] | None = None) -> Path | None:
    """Bar chart: area under the budget curve per method, one group of bars per dataset."""
    from albench.reporting.figures import method_colors

    plt = _plt()
    df = aubc_frame(records)
    if df.empty:
        return None
    datasets, methods = sorted(df["dataset"].unique()), list(dict.fromkeys(df["method"]))
    colors = colors or method_colors(methods)
    fig, ax = plt.subplots(figsize=(min(14, max(5, 0.35 * len(datasets) * len(methods) + 2)), 3.6), dpi=110)
    w = 0.8 / len(methods)
    for i, m in enumerate(methods):
        sub = df[df["method"] == m].set_index("dataset").reindex(datasets)
        ax.bar(
            np.arange(len(datasets)) + i * w,
            sub["mean"],
            w,
            yerr=sub["std"].fillna(0),
            label=m,
            capsize=2,
            color=colors.get(m),
        )
    ax.set_xticks(np.arange(len(datasets)) + 0.4 - w / 2, datasets, fontsize=8)
    ax.set_ylabel("AUBC (mean accuracy, %)")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = fig_dir / "aubc.png"
    _save_figure(fig, path)
    plt.close(fig)
    return path


def cost_frame(records: list[dict]) -> pd.DataFrame:
    """Per (dataset, method): mean wall seconds per run, selection and training seconds per round, image-encoder
    images per run, final accuracy (means over seeds)."""
    rows = []
    for r in records:
        rr = r["rounds"]
        if not rr:
            continue
        rows.append(
            {
                "dataset": r["dataset"],
                "method": method_name(r),
                "seed": r["seed"],
                "wall_s": r.get("timing", {}).get("total_seconds", np.nan),
                "select_s": float(np.mean([x["seconds"].get("select", np.nan) for x in rr])),
                "train_s": float(np.mean([x["seconds"].get("train", np.nan) for x in rr])),
                "encoder_images": (r.get("encoder_passes") or {}).get("image_encoder_images", np.nan),
                "final_accuracy": rr[-1]["accuracy"],
            }
        )
    if not rows:
        return pd.DataFrame(
            columns=["dataset", "method", "wall_s", "select_s", "train_s", "encoder_images", "final_accuracy", "n"]
        )
    df = pd.DataFrame(rows)
    g = df.groupby(["dataset", "method"], sort=True)
    out = g[["wall_s", "select_s", "train_s", "encoder_images", "final_accuracy"]].mean()
    out["n"] = g.size()
    return out.reset_index()


def cost_figure(cost: pd.DataFrame, fig_dir: Path, colors: dict[str, str]) -> Path | None:
    """Final accuracy against wall seconds per run (log scale), one point per dataset × method."""
    plt = _plt()
    if cost.empty or cost["wall_s"].isna().all():
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.8), dpi=110)
    markers = dict(zip(sorted(cost["dataset"].unique()), "osD^v<>pPX*h"))
    for _, r in cost.iterrows():
        ax.scatter(r["wall_s"], r["final_accuracy"], color=colors.get(r["method"]), marker=markers[r["dataset"]], s=26)
    for m in dict.fromkeys(cost["method"]):
        ax.scatter([], [], color=colors.get(m), label=m, s=20)
    for d, mk in markers.items():
        ax.scatter([], [], color="#555", marker=mk, label=d, s=20)
    ax.set_xscale("log")
    ax.set_xlabel("wall seconds per run (log)")
    ax.set_ylabel("final accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="best")
    fig.tight_layout()
    path = fig_dir / "cost.png"
    _save_figure(fig, path)
    plt.close(fig)
    return path


def balanced_frame(records: list[dict]) -> pd.DataFrame:
    """Per (dataset, method, round): mean balanced accuracy over seeds, for records with per-round diagnostics."""
    rows = []
    for r in records:
        for x in r["rounds"]:
            bal = ((x.get("diagnostics") or {}).get("test") or {}).get("balanced_accuracy")
            if bal is not None:
                rows.append(
                    {
                        "dataset": r["dataset"],
                        "method": method_name(r),
                        "round": x["round"],
                        "balanced": bal,
                        "top1": x["accuracy"],
                    }
                )
    if not rows:
        return pd.DataFrame(columns=["dataset", "method", "round", "balanced", "top1"])
    return (
        pd.DataFrame(rows).groupby(["dataset", "method", "round"], sort=True)[["balanced", "top1"]].mean().reset_index()
    )


def _md_table_to_html(md: str) -> str:
    """The Markdown our tables module writes (pipe tables, **bold**, captions) as HTML."""
    parts: list[str] = []
    table: list[str] = []

    def flush():
        if not table:
            return
        head = [c.strip() for c in table[0].strip("|").split("|")]
        body = [[c.strip() for c in ln.strip("|").split("|")] for ln in table[2:]]
        cell = lambda c: re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(c))  # noqa: E731
        parts.append(
            "<table><thead><tr>"
            + "".join(f"<th>{cell(h)}</th>" for h in head)
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in body)
            + "</tbody></table>"
        )
        table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = min(6, 2 + len(line) - len(line.lstrip("#")))
            parts.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            parts.append("<p class='cap'>" + re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(line)) + "</p>")
    flush()
    return "\n".join(parts)


def _present(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Datasets and columns of a preset frame that have at least one value (Zero-shot and Average aside)."""
    ok = df[(df["status"] == "ok") & (df["column"] != "Zero-shot") & (df["dataset"] != "Average")]
    return list(dict.fromkeys(ok["dataset"])), list(dict.fromkeys(ok["column"]))


def _trimmed_md(t: dict, datasets: list[str], columns: list[str]) -> str:
    """The preset table restricted to datasets and columns with records (no walls of n/a)."""
    import dataclasses

    from albench.reporting.tables import _cell_text, _layout, to_markdown

    preset = t["preset"]
    small = dataclasses.replace(
        preset,
        datasets=tuple(d for d in preset.datasets if d in datasets),
        columns=tuple(c for c in preset.columns if c.label in columns),
    )
    budgets = sorted(set(t["frame"]["budget"]))
    cols, rows = _layout(t["frame"], small, budgets, _cell_text)
    rows = [r for r in rows if any(c not in ("n/a", "—") for c in r[2][1:])]
    hidden = len(preset.datasets) - len(small.datasets), len(preset.columns) - len(small.columns)
    note = ""
    if any(hidden):
        note = (
            f" Shown: the {len(small.datasets)} dataset(s) and {len(small.columns)} column(s) with records "
            f"({hidden[0]} dataset(s) and {hidden[1]} column(s) of the preset have none yet; `albench table "
            f"--preset {preset.name} --suite {preset.suite}` prints the full layout)."
        )
    return to_markdown(cols, rows, t["caption"] + note) + "".join(f"\n- {w}" for w in t["warnings"])


def _winners(t: dict, seeds_frame: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per (dataset, budget): the best column, its mean, the runner-up and whether the lead is significant
    (paired t-test over the seeds both share, p < alpha)."""
    from albench.reporting.stats import _ttest_p

    df = t["frame"]
    ok = df[(df["status"] == "ok") & (df["column"] != "Zero-shot") & (df["dataset"] != "Average")]
    rows = []
    for (d, b), g in ok.groupby(["dataset", "budget"], sort=False):
        g = g.sort_values("mean", ascending=False)
        best = g.iloc[0]
        row = {
            "dataset": d,
            "title": best["title"],
            "budget": b,
            "winner": best["column"],
            "mean": best["mean"],
            "runner_up": None,
            "lead": np.nan,
            "p": np.nan,
            "significant": False,
        }
        if len(g) > 1:
            second = g.iloc[1]
            sf = seeds_frame[(seeds_frame["dataset"] == d) & (seeds_frame["budget"] == b)]
            piv = sf.pivot_table(index="seed", columns="column", values="accuracy")
            if best["column"] in piv and second["column"] in piv:
                pair = piv[[best["column"], second["column"]]].dropna()
                p = _ttest_p(pair[best["column"]].to_numpy(), pair[second["column"]].to_numpy())
                row.update(p=p, significant=bool(p < alpha))
            row.update(runner_up=second["column"], lead=best["mean"] - second["mean"])
        rows.append(row)
    return pd.DataFrame(rows)


def _winners_html(w: pd.DataFrame, colors: dict[str, str]) -> str:
    budgets = sorted(w["budget"].unique())
    head = "<tr><th>dataset</th>" + "".join(f"<th>{b:g} %</th>" for b in budgets) + "</tr>"
    body = []
    for title, g in w.groupby("title", sort=False):
        cells = []
        for b in budgets:
            r = g[g["budget"] == b]
            if r.empty:
                cells.append("<td>—</td>")
                continue
            r = r.iloc[0]
            mark = " †" if r["significant"] else ""
            lead = (
                ""
                if np.isnan(r["lead"])
                else f" <small>(+{r['lead']:.1f} over {html.escape(str(r['runner_up']))})</small>"
            )
            dot = f"<span style='color:{colors.get(r['winner'], '#000')}'>&#9632;</span> "
            cells.append(f"<td>{dot}<b>{html.escape(r['winner'])}</b> {r['mean']:.1f}{mark}{lead}</td>")
        body.append(f"<tr><td>{html.escape(str(title))}</td>" + "".join(cells) + "</tr>")
    return f"<table class='summary'><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _preset_views(records: list[dict]) -> list[dict]:
    """Every preset × suite with at least one record: its table, trimmed table, winners and comparison."""
    from albench.engine.grid import preset_names
    from albench.reporting.stats import compare, seed_frame
    from albench.reporting.tables import preset_tables

    out = []
    for name in preset_names():
        for suite in ("paper", "toy"):
            try:
                t = preset_tables(name, suite, records, compare="paper" if suite == "paper" else None)
            except AlbenchError as exc:  # a broken preset file costs its section, not the report (listed)
                warnings.warn(f"preset {name} ({suite} suite) left out of the report: {exc}", stacklevel=2)
                continue
            datasets, columns = _present(t["frame"])
            if not datasets:
                continue
            sf = seed_frame(t["preset"], records)
            view = {"t": t, "datasets": datasets, "columns": columns, "winners": _winners(t, sf), "compare": None}
            if "Ours" in columns and len(columns) > 1:
                view["compare"] = compare(name, suite, records, "Ours")
            out.append(view)
    return out


def _section(id_: str, title: str, body: str) -> str:
    return f"<section id='{id_}'><h2>{html.escape(title)}</h2>{body}</section>"


def write_report(results_dir: str | Path, out_dir: str | Path = "reports", configs=()) -> Path:
    """Write ``out_dir/index.html`` (+ figures/) for the records in ``results_dir``.

    Reads like a paper's appendix: a one-page summary first (winner per dataset × budget with
    significance marks, the reference column against every other), then the curves (every method
    on one axis per dataset, zero-shot line), AUBC, metrics beyond top-1, cost, the tables, and
    the runs. Sections appear only when they have records. Every figure, table and summary shows
    one configuration per cell (``albench.reporting.cells``), chosen once here. Warnings raised
    while building it are listed on the page (and returned by ``report_warnings``), never printed raw.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = _write_report(results_dir, out_dir, configs, caught)
    LAST_WARNINGS[:] = [str(w.message) for w in caught]
    return index


#: warnings raised while writing the last report (the CLI prints them as "warning: ..." lines)
LAST_WARNINGS: list[str] = []


def _write_report(results_dir: Path, out_dir: Path, configs, caught) -> Path:
    from albench.reporting.figures import method_colors
    from albench.reporting.stats import cd_diagram
    from albench.reporting.tables import simple_table

    all_records = [rec for _, rec in iter_records(results_dir)]
    if not all_records:
        raise AlbenchError(f"No run records found in {results_dir}; run `albench run` first or pass --results-dir.")
    records, config_notes = chosen_records(all_records, configs, key=labelled_cell_key)
    fig_dir = out_dir / "figures"
    try:
        fig_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AlbenchError(f"Cannot write the report to {out_dir}: {exc.strerror}; pass --out.") from exc
    views = _preset_views(records)
    # one colour per method everywhere: preset columns in their order first, then the rest
    names = [c for v in views for c in v["columns"]] + sorted({method_name(r) for r in records})
    colors = method_colors(names)
    figs = curves(records, fig_dir, colors)
    aubc_path = aubc_figure(records, fig_dir, colors)
    cost = cost_frame(records)
    cost_path = cost_figure(cost, fig_dir, colors)
    bal = balanced_frame(records)
    failed = sorted((results_dir / "failed").rglob("*.json")) if (results_dir / "failed").exists() else []

    h = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>albench report</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:0.5em 0 1em;font-size:13px}"
        "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}"
        "td:first-child,th:first-child{text-align:left}.cap{font-size:12px;color:#444;max-width:1100px}"
        ".figs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;max-width:620px}"
        "img{border:1px solid #ddd}nav a{margin-right:1em}</style></head><body>",
        "<h1>albench report</h1>",
        f"<p>{len(all_records)} run record(s) from <code>{html.escape(str(results_dir.resolve()))}</code>; generated "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. {html.escape(STD_NOTE)}.</p>",
    ]
    nav = []

    # 1. summary (one page)
    if views:
        body = [
            "<p class='cap'>Best column per dataset and budget (mean accuracy, %), with its lead over the "
            "runner-up; † = the lead is significant (paired t-test over the seeds both share, p &lt; 0.05). "
            "Each cell holds one configuration.</p>"
        ]
        for v in views:
            t = v["t"]
            body.append(f"<h3>{html.escape(display_title(t['preset']))} — {t['preset'].suite} suite</h3>")
            body.append(_winners_html(v["winners"], colors))
            if v["compare"] is not None:
                c = v["compare"]
                summary_md = c.markdown.split("\n### ")[0]
                body.append(_md_table_to_html("\n".join(summary_md.splitlines()[2:])))
        h.append(_section("summary", "Summary", "".join(body)))
        nav.append(("summary", "Summary"))

    # 2. curves
    h.append(
        _section(
            "curves",
            "Accuracy vs. labels",
            "<div class='figs'>"
            + "".join(
                f"<figure class='curve'><img src='figures/{p.name}' alt='{html.escape(title)}' width='616'>"
                f"<figcaption>{html.escape(title)}: every method on the same axes; mean over seeds, band = ±1 sample std; "
                "dashed = zero-shot CLIP</figcaption></figure>"
                for title, p in figs
            )
            + "</div>",
        )
    )
    nav.append(("curves", "Curves"))
    if aubc_path:
        h.append(
            _section(
                "aubc",
                "Area under the budget curve",
                f"<figure class='curve'><img src='figures/{aubc_path.name}' alt='AUBC per method'>"
                "<figcaption>mean accuracy over the labeled rounds per method; error bar = sample std over "
                "seeds</figcaption></figure>",
            )
        )
        nav.append(("aubc", "AUBC"))

    # 3. beyond top-1
    if not bal.empty:
        piv = bal.pivot_table(index=["dataset", "method"], columns="round", values="balanced")
        md = [
            "| dataset | method | " + " | ".join(f"round {r}" for r in piv.columns) + " |",
            "|---|---|" + "---|" * len(piv.columns),
        ]
        md += [
            f"| {d} | {m} | " + " | ".join("—" if pd.isna(v) else f"{v:.1f}" for v in row) + " |"
            for (d, m), row in piv.iterrows()
        ]
        md.append(
            "\nBalanced accuracy (%, mean of per-class accuracies; mean over seeds) of the adapter trained in "
            "each round; per-class accuracies are in each record's rounds[i].diagnostics.test."
        )
        h.append(_section("balanced", "Beyond top-1: balanced accuracy", _md_table_to_html("\n".join(md))))
        nav.append(("balanced", "Balanced accuracy"))

    # 4. cost
    if not cost.empty:
        md = [
            "| dataset | method | runs | wall s / run | select s / round | train s / round | image-encoder images / run "
            "| final accuracy |",
            "|---|---|---|---|---|---|---|---|",
        ]
        md += [
            f"| {r['dataset']} | {r['method']} | {int(r['n'])} | {r['wall_s']:.1f} | {r['select_s']:.3f} | "
            f"{r['train_s']:.2f} | {'—' if pd.isna(r['encoder_images']) else f'{r.encoder_images:,.0f}'} | "
            f"{r['final_accuracy']:.1f} |"
            for _, r in cost.iterrows()
        ]
        md.append(
            "\nMeans over seeds. Wall seconds depend on the machine (see each record's provenance); "
            "image-encoder images are machine-independent and include filling the frozen-feature cache, "
            "so the first run on a dataset pays for the ones after it."
        )
        fig = (
            (
                f"<figure class='curve'><img src='figures/{cost_path.name}' alt='accuracy against cost'>"
                "<figcaption>final accuracy against wall seconds per run</figcaption></figure>"
            )
            if cost_path
            else ""
        )
        h.append(_section("cost", "Cost", fig + _md_table_to_html("\n".join(md))))
        nav.append(("cost", "Cost"))

    # 5. tables, comparisons and CD diagrams
    if views:
        body = []
        for v in views:
            t = v["t"]
            part = [_md_table_to_html(_trimmed_md(t, v["datasets"], v["columns"]))]
            if "compare_md" in t:
                part.append("<h4>Beside the paper</h4>" + _md_table_to_html(t["compare_md"]))
            part.append("<h4>Extra figures</h4>" + _md_table_to_html(t["extras_md"]))
            c = v["compare"]
            if c is not None:
                imgs = []
                for rk in c.rankings:
                    p = cd_diagram(rk, fig_dir / f"cd_{t['preset'].slug}_{rk.budget:g}pct.png", colors)
                    if p is not None:
                        imgs.append(
                            f"<figure><img src='figures/{Path(p).name}' alt='critical difference "
                            f"{rk.budget:g} %' width='616'></figure>"
                        )
                part.append(
                    "<h4>Ours against every other column</h4>"
                    + _md_table_to_html("\n".join(c.markdown.splitlines()[2:]))
                    + "<div class='figs'>"
                    + "".join(imgs)
                    + "</div>"
                )
            body.append(
                f"<section class='preset'><h3>{html.escape(display_title(t['preset']))} — {t['preset'].suite} "
                f"suite</h3>{''.join(part)}</section>"
            )
        h.append(_section("tables", "Tables", "".join(body)))
        nav.append(("tables", "Tables"))
    else:
        h.append(
            _section("tables", "All records (dataset × adapter × round)", _md_table_to_html(simple_table(records)[0]))
        )
        nav.append(("tables", "Table"))
    if config_notes:
        h.append(
            _section(
                "configs",
                "Cells with several configurations",
                "<p class='cap'>Each cell shows one configuration (--config, else the most seeds, then the "
                "newest); the others, by what differs:</p><ul>"
                + "".join(f"<li>{html.escape(n)}</li>" for n in config_notes)
                + "</ul>",
            )
        )
        nav.append(("configs", "Configurations"))
    from albench.reporting.mechanism import mechanism_markdown

    mech = mechanism_markdown(records)
    if mech:
        h.append(_section("mechanism", "Mechanism", _md_table_to_html(mech)))
        nav.append(("mechanism", "Mechanism"))

    # 6. runs
    rows = [
        "<table id='runs-table'><thead><tr>"
        + "".join(
            f"<th>{c}</th>"
            for c in (
                "run",
                "dataset",
                "strategy",
                "adapter",
                "seed",
                "backbone",
                "rounds",
                "final acc",
                "seconds",
                "finished",
                "device",
                "host",
                "albench",
                "torch",
                "git",
            )
        )
        + "</tr></thead><tbody>"
    ]
    for rec in sorted(records, key=lambda r: r["run_id"]):
        env = rec.get("environment", {})
        cells = [
            rec["run_id"],
            rec["dataset"],
            rec["strategy"],
            rec["adapter"],
            rec["seed"],
            rec.get("backbone", {}).get("arch", "?")
            + ("" if not rec.get("backbone", {}).get("random_init") else " (random init)"),
            len(rec["rounds"]),
            f"{rec['rounds'][-1]['accuracy']:.2f}" if rec["rounds"] else "-",
            rec.get("timing", {}).get("total_seconds", "-"),
            rec.get("timing", {}).get("finished_at", "-")[:19],
            rec.get("device", "-"),
            (rec.get("provenance") or {}).get("hostname", "-"),
            env.get("albench", "-"),
            env.get("torch", "-"),
            (env.get("git_sha") or "-")[:12],
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    rows.append("</tbody></table>")
    h.append(_section("runs", "Runs", "".join(rows)))
    nav.append(("runs", "Runs"))
    if failed:
        h.append(
            _section(
                "failures",
                f"Failed runs ({len(failed)})",
                "<ul>"
                + "".join(f"<li><code>{html.escape(str(p.relative_to(results_dir)))}</code></li>" for p in failed)
                + "</ul>",
            )
        )
        nav.append(("failures", "Failures"))
    msgs = list(dict.fromkeys(str(w.message) for w in caught))
    if msgs:
        h.append(
            _section(
                "warnings",
                f"Warnings ({len(msgs)})",
                "<ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in msgs) + "</ul>",
            )
        )
        nav.append(("warnings", "Warnings"))
    h.insert(3, "<nav>" + "".join(f"<a href='#{i}'>{html.escape(t)}</a>" for i, t in nav) + "</nav>")
    # Marks each figure as decoded (data-ok) and records the page height once loaded; tests read both from the DOM.
    h.append(
        "<script>window.addEventListener('load',function(){var n=0;document.querySelectorAll('img')"
        ".forEach(function(i){var ok=i.complete&&i.naturalWidth>0;i.dataset.ok=ok;if(ok)n++;});"
        "document.body.dataset.imagesOk=n;"
        "document.body.dataset.height=document.documentElement.scrollHeight;});</script>"
    )
    h.append("</body></html>")
    return atomic_write(out_dir / "index.html", "\n".join(h))
