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
from albench.reporting.cells import chosen_records
from albench.reporting.tables import STD_NOTE, config_group


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def curve_frame(records: list[dict]) -> pd.DataFrame:
    """Per (dataset, adapter, arch, label, round): mean and sample std of accuracy over seeds, seed count.

    ``records`` are one configuration per cell already (``albench.reporting.cells.chosen_records``);
    round 0 is zero-shot.
    """
    rows = []
    for rec in records:
        base = {"dataset": rec["dataset"], "adapter": rec["adapter"], "label": rec.get("label") or rec["strategy"],
                "arch": rec.get("backbone", {}).get("arch", "?"), "seed": rec["seed"], "config": config_group(rec)}
        rows.append({**base, "round": 0, "pct": 0.0, "acc": rec["zero_shot_accuracy"]})
        rows += [{**base, "round": r["round"], "pct": r["budget_pct"], "acc": r["accuracy"]} for r in rec["rounds"]]
    if not rows:
        return pd.DataFrame(columns=["dataset", "adapter", "arch", "label", "config", "round", "pct", "mean", "std", "n"])
    df = pd.DataFrame(rows)
    return (df.groupby(["dataset", "adapter", "arch", "label", "config", "round"], sort=True)
              .agg(pct=("pct", "mean"), mean=("acc", "mean"), std=("acc", "std"), n=("acc", "size")).reset_index())


def curves(records: list[dict], fig_dir: Path) -> list[tuple[str, Path]]:
    """One PNG per (dataset, adapter, backbone): mean accuracy vs labeled % per strategy label, ±std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cf = curve_frame(records)
    out = []
    fig_dir.mkdir(parents=True, exist_ok=True)
    for (d, a, arch), g in cf.groupby(["dataset", "adapter", "arch"], sort=True):
        fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=110)
        for label, st in g.groupby("label", sort=True):
            ax.plot(st["pct"], st["mean"], marker="o", ms=3, lw=1.4, label=f"{label} (n={int(st['n'].max())})")
            band = st["std"].fillna(0.0)
            ax.fill_between(st["pct"], st["mean"] - band, st["mean"] + band, alpha=0.18)
        ax.set_xlabel("labeled samples (% of pool)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{d} — {a} — {arch}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = fig_dir / f"curve_{_slug(d)}_{_slug(a)}_{_slug(arch)}.png"
        _save_figure(fig, path)
        plt.close(fig)
        out.append((f"{d} · {a} · {arch}", path))
    return out


def aubc_frame(records: list[dict]) -> pd.DataFrame:
    """Area under the budget curve per (dataset, label × adapter): mean and sample std over seeds, seed count."""
    from albench.reporting.tables import aubc

    rows = [{"dataset": r["dataset"], "label": f"{r.get('label') or r['strategy']} × {r['adapter']}",
             "config": config_group(r), "v": aubc(r["rounds"])} for r in records]
    if not rows:
        return pd.DataFrame(columns=["dataset", "label", "config", "mean", "std", "n"])
    return (pd.DataFrame(rows).groupby(["dataset", "label", "config"])["v"]
            .agg(mean="mean", std="std", n="size").reset_index())


def _save_figure(fig, path: Path) -> None:
    """A PNG written through the atomic writer: a killed report leaves the old figure or the new one."""
    atomic_write(path, lambda f: fig.savefig(f, format="png"))


def aubc_figure(records: list[dict], fig_dir: Path) -> Path | None:
    """Bar chart: area under the budget curve per strategy label, one group of bars per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = aubc_frame(records)
    if df.empty:
        return None
    datasets, labels = sorted(df["dataset"].unique()), sorted(df["label"].unique())
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(datasets) * max(1, len(labels)) / 3), 3.6), dpi=110)
    w = 0.8 / len(labels)
    for i, lab in enumerate(labels):
        sub = df[df["label"] == lab].set_index("dataset").reindex(datasets)
        ax.bar(np.arange(len(datasets)) + i * w, sub["mean"], w, yerr=sub["std"].fillna(0), label=lab, capsize=2)
    ax.set_xticks(np.arange(len(datasets)) + 0.4 - w / 2, datasets, fontsize=8)
    ax.set_ylabel("AUBC (mean accuracy, %)")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = fig_dir / "aubc.png"
    _save_figure(fig, path)
    plt.close(fig)
    return path


def _md_table_to_html(md: str) -> str:
    """The Markdown our tables module writes (pipe tables, **bold**, captions) as HTML."""
    parts, table = [], []

    def flush():
        if not table:
            return
        head = [c.strip() for c in table[0].strip("|").split("|")]
        body = [[c.strip() for c in ln.strip("|").split("|")] for ln in table[2:]]
        cell = lambda c: re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(c))  # noqa: E731
        parts.append("<table><thead><tr>" + "".join(f"<th>{cell(h)}</th>" for h in head) + "</tr></thead><tbody>"
                     + "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in body)
                     + "</tbody></table>")
        table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.strip():
            parts.append("<p class='cap'>" + re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(line)) + "</p>")
    flush()
    return "\n".join(parts)


def _preset_sections(records: list[dict]) -> list[tuple[str, str]]:
    """(title, html) for every preset × suite that has at least one record."""
    from albench.engine.grid import preset_names
    from albench.reporting.tables import preset_tables

    out = []
    for name in preset_names():
        for suite in ("paper", "toy"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = preset_tables(name, suite, records, compare="paper" if suite == "paper" else None)
            df = t["frame"]
            if not ((df["status"] == "ok") & (df["column"] != "Zero-shot")).any():
                continue
            body = _md_table_to_html(t["md"])
            if "compare_md" in t:
                body += "<h4>Beside the paper</h4>" + _md_table_to_html(t["compare_md"])
            body += "<h4>Extra figures</h4>" + _md_table_to_html(t["extras_md"])
            out.append((f"{t['preset'].title} — {suite} suite", body))
    return out


def write_report(results_dir: str | Path, out_dir: str | Path = "reports", configs=()) -> Path:
    """Write ``out_dir/index.html`` (+ figures/) for the records in ``results_dir``.

    Every figure, table and summary shows one configuration per cell (``albench.reporting.cells``):
    the choice is made once here, and the configurations left out are listed by what differs.
    """
    from albench.reporting.tables import simple_table

    results_dir, out_dir = Path(results_dir), Path(out_dir)
    all_records = [rec for _, rec in iter_records(results_dir)]
    if not all_records:
        raise AlbenchError(f"No run records found in {results_dir}; run `albench run` first or pass --results-dir.")
    records, config_notes = chosen_records(all_records, configs)
    fig_dir = out_dir / "figures"
    try:
        fig_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AlbenchError(f"Cannot write the report to {out_dir}: {exc.strerror}; pass --out.") from exc
    figs = curves(records, fig_dir)
    aubc_path = aubc_figure(records, fig_dir)
    failed = sorted((results_dir / "failed").rglob("*.json")) if (results_dir / "failed").exists() else []

    h = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>albench report</title>",
         "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
         "table{border-collapse:collapse;margin:0.5em 0 1em;font-size:13px}"
         "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}"
         "td:first-child,th:first-child{text-align:left}.cap{font-size:12px;color:#444;max-width:1100px}"
         ".figs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px}"
         "img{border:1px solid #ddd}</style></head><body>",
         "<h1>albench report</h1>",
         f"<p>{len(all_records)} run record(s) from <code>{html.escape(str(results_dir.resolve()))}</code>; generated "
         f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. {html.escape(STD_NOTE)}.</p>",
         "<h2 id='curves'>Accuracy vs. budget</h2><div class='figs'>"]
    for title, p in figs:
        h.append(f"<figure class='curve'><img src='figures/{p.name}' alt='{html.escape(title)}' width='572'>"
                 f"<figcaption>{html.escape(title)}: mean over seeds, band = ±1 sample std</figcaption></figure>")
    h.append("</div>")
    if aubc_path:
        h.append("<h2 id='aubc'>Area under the budget curve</h2><figure class='curve'>"
                 f"<img src='figures/{aubc_path.name}' alt='AUBC per strategy'><figcaption>mean accuracy over the "
                 "labeled rounds per strategy × adapter; error bar = sample std over seeds</figcaption></figure>")
    if config_notes:
        h.append("<h2 id='configs'>Cells with several configurations</h2><p class='cap'>Each cell shows one "
                 "configuration (--config, else the most seeds, then the newest); the others, by what differs:</p><ul>"
                 + "".join(f"<li>{html.escape(n)}</li>" for n in config_notes) + "</ul>")
    h.append("<h2 id='tables'>Tables</h2>")
    for title, body in _preset_sections(records):
        h.append(f"<section class='preset'><h3>{html.escape(title)}</h3>{body}</section>")
    h.append("<h3>All records (dataset × adapter × round)</h3>" + _md_table_to_html(simple_table(records)[0]))
    from albench.reporting.mechanism import mechanism_markdown

    mech = mechanism_markdown(records)
    if mech:
        h.append("<h2 id='mechanism'>Mechanism</h2>" + _md_table_to_html(mech))
    h.append("<h2 id='runs'>Runs</h2><table id='runs-table'><thead><tr>" + "".join(
        f"<th>{c}</th>" for c in ("run", "dataset", "strategy", "adapter", "seed", "backbone", "rounds", "final acc",
                                  "seconds", "finished", "device", "albench", "torch", "git")) + "</tr></thead><tbody>")
    for rec in sorted(records, key=lambda r: r["run_id"]):
        env = rec.get("environment", {})
        cells = [rec["run_id"], rec["dataset"], rec["strategy"], rec["adapter"], rec["seed"],
                 rec.get("backbone", {}).get("arch", "?") + ("" if not rec.get("backbone", {}).get("random_init") else " (random init)"),
                 len(rec["rounds"]), f"{rec['rounds'][-1]['accuracy']:.2f}" if rec["rounds"] else "-",
                 rec.get("timing", {}).get("total_seconds", "-"), rec.get("timing", {}).get("finished_at", "-")[:19],
                 rec.get("device", "-"), env.get("albench", "-"), env.get("torch", "-"), (env.get("git_sha") or "-")[:12]]
        h.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    h.append("</tbody></table>")
    if failed:
        h.append(f"<h2 id='failures'>Failed runs ({len(failed)})</h2><ul>")
        for p in failed:
            h.append(f"<li><code>{html.escape(str(p.relative_to(results_dir)))}</code></li>")
        h.append("</ul>")
    # Marks each figure as decoded (data-ok) once the page has loaded; tests read it from the DOM.
    h.append("<script>window.addEventListener('load',function(){var n=0;document.querySelectorAll('img')"
             ".forEach(function(i){var ok=i.complete&&i.naturalWidth>0;i.dataset.ok=ok;if(ok)n++;});"
             "document.body.dataset.imagesOk=n;});</script>")
    h.append("</body></html>")
    return atomic_write(out_dir / "index.html", "\n".join(h))
