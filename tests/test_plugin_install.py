"""Install a throwaway third-party plugin distribution and use it from the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(900)]

FIXTURE = Path(__file__).parent / "fixtures" / "albench_demo_plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    import shutil

    src = build / "src"
    shutil.copytree(FIXTURE, src)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
    )
    return target


def albench(site, *args, cwd):
    env = dict(os.environ, PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "albench.cli.main", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def test_third_party_plugin_listed_and_runs(plugin_site, tmp_path):
    out = albench(plugin_site, "list", "--verbose", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "first-k  albench_demo_plugin:FirstK  [albench-demo-plugin 0.0.1]" in out.stdout
    assert "broken" in out.stdout  # listed without importing
    res = albench(
        plugin_site,
        "run",
        "--strategy",
        "first-k",
        "--dataset",
        "digits",
        "--rounds",
        "2",
        "--adapter-opt",
        "epochs=2",
        "--adapter-opt",
        "min_steps=0",
        "--results-dir",
        str(tmp_path / "r"),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    rec = next((tmp_path / "r" / "digits").glob("first-k__coop__seed1__*.json"))
    import json

    data = json.loads(rec.read_text())
    assert data["rounds"][0]["selected"] == list(range(12))
    assert data["plugins"]["strategy"]["distribution"] == "albench-demo-plugin"


def test_third_party_dataset_listed_and_runs(plugin_site, tmp_path):
    out = albench(plugin_site, "list", "--verbose", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    datasets = out.stdout.split("datasets:")[1]
    assert "stripes  albench_demo_plugin:load_stripes  [albench-demo-plugin 0.0.1]" in datasets
    assert "digits  albench.data.toy.tasks:digits  [albench 0.1.0]" in datasets  # built-ins: the same mechanism
    res = albench(
        plugin_site,
        "run",
        "--strategy",
        "first-k",
        "--dataset",
        "stripes",
        "--rounds",
        "2",
        "--round-budget",
        "6",
        "--adapter-opt",
        "epochs=2",
        "--adapter-opt",
        "min_steps=0",
        "--results-dir",
        str(tmp_path / "r"),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    import json

    data = json.loads(next((tmp_path / "r" / "stripes").glob("first-k__coop__seed1__*.json")).read_text())
    assert [r["selected"] for r in data["rounds"]] == [list(range(6)), list(range(6, 12))]
    assert [r["labeled"] for r in data["rounds"]] == [6, 12]


def test_broken_plugin_reported_with_distribution(plugin_site, tmp_path):
    res = albench(
        plugin_site, "run", "--strategy", "broken", "--dataset", "digits", "--results-dir", str(tmp_path), cwd=tmp_path
    )
    assert res.returncode == 2
    assert "strategy 'broken' from distribution albench-demo-plugin 0.0.1 failed to import" in res.stderr
    assert "Traceback" not in res.stderr
