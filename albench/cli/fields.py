"""How the command line spells the fields library errors name (``AlbenchError.field``)."""

from __future__ import annotations

from albench.api.errors import AlbenchError

FLAGS: dict[str, str] = {
    "rounds": "--rounds",
    "round_budget": "--round-budget",
    "round_fraction": "--budget-pct",
    "seed": "--seeds",
    "workers": "--workers",
    "results_dir": "--results-dir",
    "cache_dir": "--cache-dir",
    "data_root": "--data-root",
    "dataset_options": "--dataset-opt",
    "strategy_options": "--strategy-opt",
    "adapter_options": "--adapter-opt",
    "launcher": "--launcher",
    "device": "--device",
    "precision": "--precision",
    "pretrained": "--pretrained",
}


def message(exc: AlbenchError) -> str:
    """The error's message as the command line says it (fields spelled as flags)."""
    return exc.render(FLAGS)
