"""The docs cannot drift: generated plugin tables are current, the plugin guide's commands run, links resolve."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIXTURE = ROOT / "tests" / "fixtures" / "albench_demo_plugin"


def test_generated_plugin_tables_are_current():
    res = subprocess.run([sys.executable, str(DOCS / "generate.py"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_generated_table_rows_come_from_the_plugins():
    sys.path.insert(0, str(DOCS))
    try:
        import generate
    finally:
        sys.path.pop(0)
    from albench.api.plugins import ADAPTERS

    row = next(r for r in generate.adapters_table().splitlines() if r.startswith("| `coop` |"))
    assert "`min_steps=200`" in row and "`lr=0.01`" in row and "CoOp: learnable text context" in row
    assert ADAPTERS.get("coop").defaults["min_steps"] == 200


def _tested_commands() -> list[str]:
    text = (DOCS / "plugins.md").read_text()
    block = re.search(r"<!-- tested: [^\n]*-->\n```bash\n(.*?)```", text, re.S)
    assert block, "plugins.md lost its tested command block"
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.e2e
def test_plugin_guide_commands_run(tmp_path):
    """Each command of the guide's tested block, in order; `pip install -e DIR` installs into a private
    site folder (the test must not change the environment it runs in)."""
    shutil.copytree(FIXTURE, tmp_path / "albench-demo-plugin", ignore=shutil.ignore_patterns("*.egg-info", "build"))
    site = tmp_path / "site"
    bindir = str(Path(sys.executable).parent)
    env = dict(
        os.environ,
        PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
    )
    outputs = []
    for line in _tested_commands():
        argv = shlex.split(line)
        if argv[:3] == ["pip", "install", "-e"]:
            argv = [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--target",
                str(site),
                argv[3],
            ]
        elif argv[0] in ("python", "pytest"):
            argv = [sys.executable] + (["-m", "pytest"] if argv[0] == "pytest" else []) + argv[1:]
        res = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{line}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        outputs.append(res.stdout)
    listing = outputs[1]
    assert "first-k  albench_demo_plugin:FirstK  [albench-demo-plugin 0.0.1]" in listing.split("datasets:")[0]
    assert "stripes  albench_demo_plugin:load_stripes  [albench-demo-plugin 0.0.1]" in listing.split("datasets:")[1]
    from albench.api.conformance import strategy_checks

    assert f"{len(strategy_checks()) + 1} passed" in outputs[3]  # one test per conformance rule + the dataset test
    assert "1 run(s) done, 0 skipped, 0 failed" in outputs[4]
    assert list((tmp_path / "results" / "stripes").glob("first-k__coop__seed1__*.json"))


def test_readme_is_short_and_every_doc_is_linked():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    linked = set(re.findall(r"\(docs/([\w-]+\.md)\)", readme))
    assert {p.name for p in DOCS.glob("*.md")} <= linked


def test_relative_links_resolve():
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_docs_carry_no_history():
    pattern = re.compile(r"issue[- ]\d|before the change|after the change|last code change", re.I)
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        hits = [line for line in page.read_text().splitlines() if pattern.search(line)]
        assert not hits, f"{page.name}: {hits}"
