"""Experiment trackers fed by the per-round callback: ``--log-to tensorboard|mlflow|wandb``.

Off by default; each is an optional extra (``pip install albench[tensorboard]``,
``[mlflow]``, ``[wandb]``). A tracker opens when a run's first round finishes
(runs whose record already exists are not logged again), logs every round's
accuracy, balanced accuracy, labeled count and seconds against the number of
labels, and closes with the record's configuration and final numbers. Where
they write, without a server:

* tensorboard: event files under ``<results>/tensorboard/<dataset>/<run id>``;
* mlflow: the tracking URI in ``$MLFLOW_TRACKING_URI``, else MLflow's local
  file store ``<results>/mlruns`` (experiment "albench"; ``MLFLOW_ALLOW_FILE_STORE``
  is set for it, as MLflow 3 requires);
* wandb: ``$WANDB_MODE`` (default ``offline``), files under ``<results>/wandb``;
  ``wandb sync`` uploads them later.

A tracker that fails while logging never fails the run: the record on disk is
the source of truth, and the failure is reported as a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Sequence

from albench.api.errors import AlbenchError

TRACKERS = ("tensorboard", "mlflow", "wandb")
_MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def check_trackers(names: Sequence[str] | str | None) -> tuple[str, ...]:
    """Validate tracker names and that their packages are installed (before any run)."""
    if not names:
        return ()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    import importlib.util

    out = []
    for n in names:
        if n not in TRACKERS:
            raise AlbenchError(f"Unknown tracker {n!r} for --log-to; valid: {', '.join(TRACKERS)}.")
        if importlib.util.find_spec(_MODULES[n]) is None:
            raise AlbenchError(f"--log-to {n} needs the {n} package: pip install 'albench[{n}]'.")
        out.append(n)
    return tuple(dict.fromkeys(out))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(_flat(v, key))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v, default=str)
    return out


def round_metrics(info: dict) -> dict[str, float]:
    """The numbers logged per round (a round's entry of the record)."""
    m = {"accuracy": info["accuracy"], "labeled": info["labeled"], "budget_pct": info["budget_pct"]}
    bal = ((info.get("diagnostics") or {}).get("test") or {}).get("balanced_accuracy")
    if bal is not None:
        m["balanced_accuracy"] = bal
    if info.get("classes_covered") is not None:
        m["classes_covered"] = info["classes_covered"]
    for phase, sec in (info.get("seconds") or {}).items():
        if isinstance(sec, (int, float)):
            m[f"seconds/{phase}"] = sec
    return {k: float(v) for k, v in m.items()}


class Tracker(ABC):
    """One run's connection to one tracker."""

    def __init__(self, run_name: str, spec, results_dir: Path):
        self.run_name, self.spec, self.results_dir = run_name, spec, Path(results_dir)

    def params(self) -> dict:
        s = self.spec
        return _flat(
            {
                "strategy": s.strategy,
                "adapter": s.adapter,
                "dataset": s.dataset,
                "seed": s.seed,
                "rounds": s.rounds,
                "round_fraction": s.round_fraction,
                "round_budget": s.round_budget,
                "label": s.label,
                "strategy_options": dict(s.strategy_options),
                "adapter_options": dict(s.adapter_options),
                "backbone": s.backbone.arch,
            }
        )

    @abstractmethod
    def log_round(self, info: dict) -> None:
        """Log one round's figures (accuracy, labels, diagnostics) to the tracker."""

    @abstractmethod
    def finish(self, record: dict | None) -> None:
        """Close the tracker's run; ``record`` is None when the run failed."""


class TensorBoardTracker(Tracker):
    def __init__(self, *a):
        super().__init__(*a)
        from torch.utils.tensorboard import SummaryWriter

        self.dir = self.results_dir / "tensorboard" / self.spec.dataset / self.run_name
        self.writer = SummaryWriter(log_dir=str(self.dir))
        self.writer.add_text("config", json.dumps(self.params(), indent=1, default=str))

    def log_round(self, info: dict) -> None:
        for k, v in round_metrics(info).items():
            if k != "labeled":
                self.writer.add_scalar(k, v, global_step=int(info["labeled"]))

    def finish(self, record: dict | None) -> None:
        if record is not None:
            self.writer.add_scalar("zero_shot_accuracy", record["zero_shot_accuracy"], global_step=0)
        self.writer.close()


class MLflowTracker(Tracker):
    def __init__(self, *a):
        super().__init__(*a)
        import mlflow

        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            # the local file store needs no server and no database; MLflow 3 asks to opt in to it
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((self.results_dir / "mlruns").resolve().as_uri())
        mlflow.set_experiment("albench")
        self.run = mlflow.start_run(run_name=self.run_name)
        mlflow.log_params({k: ("" if v is None else v) for k, v in self.params().items()})

    def log_round(self, info: dict) -> None:
        self.mlflow.log_metrics(round_metrics(info), step=int(info["round"]))

    def finish(self, record: dict | None) -> None:
        if record is not None:
            self.mlflow.log_metric("zero_shot_accuracy", record["zero_shot_accuracy"], step=0)
            self.mlflow.set_tags({"config_hash": record["config_hash"], "run_id": record["run_id"]})
        self.mlflow.end_run("FINISHED" if record is not None else "FAILED")


class WandbTracker(Tracker):
    def __init__(self, *a):
        super().__init__(*a)
        import wandb

        (self.results_dir / "wandb").mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "albench"),
            name=self.run_name,
            config=self.params(),
            dir=str(self.results_dir),
            mode=os.environ.get("WANDB_MODE", "offline"),
            reinit="create_new",
        )

    def log_round(self, info: dict) -> None:
        self.run.log(round_metrics(info), step=int(info["round"]))

    def finish(self, record: dict | None) -> None:
        if record is not None:
            self.run.summary["zero_shot_accuracy"] = record["zero_shot_accuracy"]
            self.run.summary["config_hash"] = record["config_hash"]
        self.run.finish(exit_code=0 if record is not None else 1)


_CLASSES: dict[str, Callable[..., Tracker]] = {
    "tensorboard": TensorBoardTracker,
    "mlflow": MLflowTracker,
    "wandb": WandbTracker,
}


class RunLoggers:
    """The trackers of one run: opened at its first round, fed each round, closed with its record."""

    def __init__(self, names: Sequence[str], spec, results_dir):
        self.names, self.spec, self.results_dir = tuple(names), spec, Path(results_dir)
        self.open: list[Tracker] = []
        self.started = False

    def _safe(self, what: str, fn) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - a tracker never fails a run
            warnings.warn(
                f"tracker {what} failed for {self.spec.dataset} {self.spec.slug()}: {type(exc).__name__}: {exc}",
                stacklevel=3,
            )

    def on_round(self, info: dict) -> None:
        if not self.started:
            self.started = True
            name = f"{self.spec.dataset}__{self.spec.slug()}"
            for n in self.names:
                self._safe(f"{n} (open)", lambda n=n: self.open.append(_CLASSES[n](name, self.spec, self.results_dir)))
        for t in self.open:
            self._safe(f"{type(t).__name__} (round)", lambda t=t: t.log_round(info))

    def finish(self, record: dict | None) -> None:
        for t in self.open:
            self._safe(f"{type(t).__name__} (finish)", lambda t=t: t.finish(record))
        self.open = []
