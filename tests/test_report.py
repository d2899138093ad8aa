"""albench report: a static page with curves, tables and run metadata, rendered in headless Chromium."""
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
    figs = sorted((tmp_path / "reports" / "figures").glob("*.png"))
    assert len(figs) == 2 * 2 + 1  # 2 datasets x 2 adapters curves + AUBC
    assert "Table 1" in html and "Ours_CoOp" in html and "<b>" in html  # preset table with bold best
    assert "runs-table" in html and html.count("<tr>") > 30  # run metadata rows
    assert "sample standard deviation" in html


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed (.ci/run installs Debian's chromium)")
@pytest.mark.slow
@pytest.mark.e2e
def test_report_renders_in_headless_chromium(results, tmp_path):
    index = write_report(results, tmp_path / "reports")
    out = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--virtual-time-budget=5000", "--dump-dom", index.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = out.stdout
    assert "<table" in dom, out.stderr[-2000:]
    n_imgs = dom.count("<img")
    assert n_imgs == 5
    assert f'data-images-ok="{n_imgs}"' in dom  # every figure decoded by the browser
    assert dom.count('data-ok="true"') == n_imgs
    assert "Ours_CoOp" in dom and "toy_textures (DTD)" in dom
