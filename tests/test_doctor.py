"""albench doctor: what a grid needs, found or missing, and the exit code that says so."""

from click.testing import CliRunner

from albench.cli.main import main


def test_doctor_on_the_demo_grid_is_ready(tmp_path):
    r = CliRunner().invoke(main, ["doctor", "--device", "cpu", "--results-dir", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    assert "toy-clip / default" in r.output and "[toy, found in shipped]" in r.output
    assert "activation: GELU (toy-clip is trained with GELU)" in r.output
    assert "digits (data root -): ok" in r.output and r.output.rstrip().endswith("would start.")
    assert not (tmp_path / "r").exists()


def test_doctor_names_what_is_missing_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    r = CliRunner().invoke(
        main,
        [
            "doctor",
            "--backbone",
            "ViT-B-16",
            "--pretrained",
            "openai",
            "--dataset",
            "dtd",
            "--data-root",
            str(tmp_path / "data"),
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 1, r.output
    assert "MISSING: Pretrained weights 'ViT-B-16' / 'openai' are not on this machine" in r.output
    assert "python -c \"import open_clip; open_clip.create_model('ViT-B-16', pretrained='openai')\"" in r.output
    assert (
        f"dtd (data root {tmp_path}/data): MISSING: Dataset 'dtd': the data root {tmp_path}/data does not exist"
        in r.output
    )
    assert "2 problem(s); albench run would stop before any run (exit 2):" in r.output
