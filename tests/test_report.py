"""albench report: a static page with curves, tables and run metadata, rendered in headless Chromium."""

import re
import shutil
import subprocess

import pytest

from albench.reporting.report import write_report

from helpers import BASE, DATASET_SHIFT, SEED_OFF, make_record  # synthetic records


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    for d, shift in list(DATASET_SHIFT.items())[:2]:
        for (s, a), base in BASE.items():
            for seed, off in SEED_OFF.items():
                make_record(root, d, s, a, seed, [base + r + off + shift for r in range(1, 7)])
    return root


@pytest.mark.slow
def test_report_writes_static_page(results, tmp_path):
    index = write_report(results, tmp_path / "reports")
    html = index.read_text()
    figs = sorted(p.name for p in (tmp_path / "reports" / "figures").glob("*.png"))
    # one curve per dataset (every method on the same axes), AUBC, cost, CD diagrams of Table 1 at 1/2/5 %
    assert figs == [
        "aubc.png",
        "cd_table1_toy_1pct.png",
        "cd_table1_toy_2pct.png",
        "cd_table1_toy_5pct.png",
        "cost.png",
        "curve_toy_shapes_toy-clip.png",
        "curve_toy_textures_toy-clip.png",
    ]
    assert "Table 1" in html and "Ours_CoOp" in html and "<b>" in html  # preset table with bold best
    assert "runs-table" in html and html.count("<tr>") > 30  # run metadata rows
    assert "sample standard deviation" in html
    # the summary comes first: winner per dataset x budget with significance marks
    assert html.index("id='summary'") < html.index("id='curves'") < html.index("id='tables'")
    summary = html[html.index("id='summary'") : html.index("id='curves'")]
    assert "<b>Ours</b> 61.0 †" in summary  # toy_shapes 1 %: 50 + 1 + 10, 3 points over Ours_CoOp on every seed
    # no walls of n/a: only the datasets and columns with records
    tables = html[html.index("id='tables'") : html.index("id='runs'")]
    assert "toy_shifted" not in tables and "Entropy" not in tables and "GCNAL" not in tables
    assert "print the full layout" in tables or "prints the full layout" in tables


def test_one_colour_per_method_and_zero_shot_on_every_curve(results, tmp_path):
    from albench.engine.records import iter_records
    from albench.reporting.figures import OURS_COLOR, method_colors

    recs = [r for _, r in iter_records(results)]
    colors = method_colors(["Random", "Ours", "BADGE"])
    assert colors["Ours"] == OURS_COLOR and len(set(colors.values())) == 3
    assert method_colors(["BADGE", "Random", "Ours"])["Ours"] == OURS_COLOR
    import matplotlib

    matplotlib.use("Agg")

    from albench.reporting import report

    seen = []
    real_save = report._save_figure

    def grab(fig, path):
        seen.append(
            (
                path.name,
                [(ln.get_label(), ln.get_color(), ln.get_ydata()) for ln in fig.axes[0].get_lines()],
                fig.axes[0].get_ylim(),
            )
        )
        real_save(fig, path)

    report._save_figure = grab
    try:
        report.curves(recs, tmp_path, {"dualprompt × dualprompt": "#d62728", "random × coop": "#1f77b4"})
    finally:
        report._save_figure = real_save
    for name, lines, ylim in seen:
        labels = [lb for lb, _, _ in lines]
        # every method of the dataset on one axis, Ours (dualprompt adapter) with the CoOp ones
        assert any(lb.startswith("dualprompt × dualprompt") for lb in labels)
        assert any(lb.startswith("random × coop") for lb in labels)
        zs = [y for lb, _, y in lines if lb.startswith("zero-shot")]
        assert zs and ylim[0] <= zs[0][0] <= ylim[1]  # the y-axis shows the zero-shot line
        assert dict((lb.split(" (n=")[0], c) for lb, c, _ in lines)["dualprompt × dualprompt"] == "#d62728"


def _browser(index, *flags):
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            "--window-size=1400,1000",
            *flags,
            index.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (.ci/run installs Debian's chromium)")
@pytest.mark.slow
@pytest.mark.e2e
def test_report_renders_in_headless_chromium(results, tmp_path):
    index = write_report(results, tmp_path / "reports")
    out = _browser(index, "--dump-dom")
    dom = out.stdout
    assert "<table" in dom, out.stderr[-2000:]
    n_imgs = dom.count("<img")
    assert n_imgs == 7
    assert f'data-images-ok="{n_imgs}"' in dom  # every figure decoded by the browser
    assert dom.count('data-ok="true"') == n_imgs
    assert "Ours_CoOp" in dom and "toy_textures (DTD)" in dom


def _height(index) -> int:
    dom = _browser(index, "--dump-dom").stdout
    m = re.search(r'data-height="(\d+)"', dom)
    assert m, dom[-2000:]
    return int(m.group(1))


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (.ci/run installs Debian's chromium)")
def test_page_height_stays_proportional_to_the_records(tmp_path):
    """A screenshot of the rendered page, and its height: one run must not produce a wall of empty tables."""
    heights = {}
    for n_datasets, runs in ((1, [("random", "coop")]), (1, list(BASE)), (3, list(BASE))):
        root = tmp_path / f"r{n_datasets}_{len(runs)}"
        for d, shift in list(DATASET_SHIFT.items())[:n_datasets]:
            for s, a in runs:
                for seed, off in SEED_OFF.items():
                    make_record(root, d, s, a, seed, [BASE[(s, a)] + r + off + shift for r in range(1, 7)])
        index = write_report(root, tmp_path / f"rep_{root.name}")
        heights[(n_datasets, len(runs))] = _height(index)
        shot = tmp_path / f"{root.name}.png"
        _browser(index, f"--screenshot={shot}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one_run, one_dataset, three = heights[(1, 1)], heights[(1, len(BASE))], heights[(3, len(BASE))]
    assert one_run < 4500, heights  # one configuration on one dataset: summary, one curve, short tables
    assert one_run < one_dataset < three, heights
    assert three < 3 * one_dataset, heights  # grows with the records, not with the presets' empty cells


@pytest.mark.slow
def test_report_lists_warnings_and_never_prints_raw_python_warnings(results, tmp_path):
    import subprocess
    import sys

    bad = results / "toy_shapes" / "broken.json"
    bad.write_text('{"schema": 1, "run_id": ')  # truncated record
    out = subprocess.run(
        [sys.executable, "-m", "albench.cli", "report", "--results-dir", str(results), "--out", str(tmp_path / "rep")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "UserWarning" not in out.stderr and "warnings.warn" not in out.stderr
    assert f"warning: {bad} is not a valid run record" in out.stderr
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "id='warnings'" in page and "broken.json is not a valid run record" in page
