"""The active-learning protocol: one run = one trajectory of R rounds.

DESIGN.md, made exact: the pool is the train split; each round adds
b = max(1, round(fraction x |pool|)) labels (1 % by default) chosen by the
strategy from the current model (zero-shot CLIP in round 1, last round's
adapter afterwards); a fresh adapter is trained on all labels so far and
evaluated on the whole test split. Budgets 1/2/5 % are rounds 1/2/5.
Strategies that need labels select uniformly at random in round 1.
Every random stream derives from the run seed (``albench.api.seeding``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

import albench

from albench import accounting
from albench.api.adapter import Adapter, AdapterEnv, Labeled, ZeroShotClassifier, accuracy
from albench.clip.backbone import Backbone, BackboneSpec
from albench.clip.profiles import apply_profile, profile_for
from albench.engine.diagnostics import round_diagnostics
from albench.engine.environment import environment
from albench.engine.provenance import provenance
from albench.api.errors import AlbenchError
from albench.data.features import CACHE_FILL, DataBank, FeatureCache
from albench.api.options import resolve_options
from albench.api.plugins import ADAPTERS, STRATEGIES
from albench.engine import store
from albench.engine.threads import DEFAULT_THREADS, apply_threads, run_threads
from albench.engine.records import SCHEMA, check_record
from albench.engine.schema import RoundRecord, RunRecord
from albench.api.seeding import numpy_rng
from albench.api.strategy import RoundContext, check_selection
from albench.data.tasks import Task, load_task


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run (before data and weights are resolved)."""

    strategy: str
    adapter: str
    dataset: str
    seed: int = 1
    strategy_options: dict = field(default_factory=dict)
    adapter_options: dict = field(default_factory=dict)
    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    rounds: int = 6
    round_fraction: float = 0.01
    round_budget: int | None = None  # absolute per-round budget; overrides round_fraction
    data_root: str | None = None
    label: str | None = None  # table column name (e.g. "Ours_CoOp"); not part of the identity
    # loader options (allow_custom_split, skip_corrupt, path, template, ...); in the config only when non-empty
    dataset_options: dict = field(default_factory=dict)

    def validate(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise AlbenchError(f"Seed {self.seed!r} is not an integer.", field="seed")
        if self.rounds <= 0:
            raise AlbenchError(f"{{field}} must be a positive integer, got {self.rounds}.", field="rounds")
        if self.round_budget is not None and self.round_budget <= 0:
            raise AlbenchError(f"{{field}} must be a positive integer, got {self.round_budget}.", field="round_budget")
        if not isinstance(self.dataset_options, dict):
            raise AlbenchError(
                f"{{field}} must be a dict of loader options, got {self.dataset_options!r}.", field="dataset_options"
            )
        if not (0 < self.round_fraction <= 1):
            raise AlbenchError(f"Per-round budget fraction must be in (0, 100 %], got {self.round_fraction * 100:g} %.")

    def slug(self) -> str:
        return f"{self.strategy}__{self.adapter}__seed{self.seed}"


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def run_config(spec: RunSpec, task: Task, backbone: Backbone) -> dict:
    """Everything that affects a run's numbers; its hash names the record."""
    spec = apply_profile(spec)
    s_cls, a_cls = STRATEGIES.get(spec.strategy), ADAPTERS.get(spec.adapter)
    config = {
        "strategy": spec.strategy,
        "strategy_options": resolve_options(
            "strategy", spec.strategy, s_cls.defaults, spec.strategy_options, s_cls.schema
        ),
        "adapter": spec.adapter,
        "adapter_options": resolve_options("adapter", spec.adapter, a_cls.defaults, spec.adapter_options, a_cls.schema),
        "dataset": spec.dataset,
        "task_fingerprint": task.fingerprint(),
        "backbone": backbone.identity,
        "compute": backbone.compute.describe(),  # device type and precision change the numbers
        "protocol": {"rounds": spec.rounds, "round_fraction": spec.round_fraction, "round_budget": spec.round_budget},
        "seed": spec.seed,
        "albench": albench.__version__,
    }
    profile = profile_for(spec.backbone.arch)
    if profile.overrides:  # absent on the paper's backbones, whose defaults are the paper's values
        config["backbone_profile"] = profile.describe()
    if spec.dataset_options:  # absent when empty, so existing runs keep their config hash
        config["dataset_options"] = dict(sorted(spec.dataset_options.items()))
    threads = run_threads()
    if threads != DEFAULT_THREADS:  # CPU reductions depend on the thread count (albench.engine.threads)
        config["threads"] = threads
    return config


def config_hash(config: dict) -> str:
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:12]


def round_budget(spec: RunSpec, pool_size: int) -> int:
    b = spec.round_budget if spec.round_budget is not None else max(1, int(round(spec.round_fraction * pool_size)))
    if b * spec.rounds > pool_size:
        raise AlbenchError(
            f"{spec.rounds} rounds of {b} labels need {b * spec.rounds} samples, but the pool of "
            f"'{spec.dataset}' has only {pool_size}."
        )
    return b


class Workspace:
    """Per-process caches of loaded backbones, tasks and data banks (shared across runs)."""

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        progress: bool = True,
        precision: str = "auto",
        deterministic: bool = False,
    ):
        self.cache = FeatureCache(cache_dir)
        self.device, self.progress = device, progress
        self.threads = apply_threads()  # the same CPU thread count in every process that runs runs
        self.precision, self.deterministic = precision, deterministic
        if deterministic:
            from albench.clip.compute import set_deterministic

            set_deterministic(True)
        self._backbones: dict = {}
        self._tasks: dict = {}
        self._banks: dict = {}

    def backbone(self, spec: BackboneSpec) -> Backbone:
        key = canonical(dataclasses.asdict(spec))
        if key not in self._backbones:
            self._backbones[key] = Backbone.load(spec, device=self.device, precision=self.precision)
        return self._backbones[key]

    def task(self, name: str, data_root: str | None, options: dict | None = None) -> Task:
        key = (name, data_root, canonical(options or {}))
        if key not in self._tasks:
            self._tasks[key] = load_task(name, data_root=data_root, **(options or {}))
        return self._tasks[key]

    @staticmethod
    def bank_key(backbone: Backbone, task: Task) -> tuple:
        """Banks are shared by runs on the same features: weights, activation, device type, precision, task."""
        return (backbone.compute_identity, task.name, task.fingerprint())

    def bank(self, backbone: Backbone, task: Task) -> DataBank:
        key = self.bank_key(backbone, task)
        if key not in self._banks:
            self._banks[key] = DataBank(backbone, task, self.cache, progress=self.progress)
        return self._banks[key]


@dataclass
class RunOutcome:
    path: Path
    record: dict | None
    skipped: bool = False


def record_path(results_dir: Path, spec: RunSpec, chash: str) -> Path:
    """The record of ``spec`` with configuration hash ``chash`` (``albench.engine.store`` names every run file)."""
    return store.location(results_dir, spec.dataset, spec.slug(), chash).record


def _class_hist(labels: np.ndarray, num_classes: int) -> list[int]:
    return np.bincount(labels, minlength=num_classes).astype(int).tolist()


@dataclass
class FitRequest:
    """A run's training of one round, handed by its trajectory to the driver (alone, or with other runs')."""

    adapter: Adapter
    labeled: Labeled
    pseudo: Labeled | None


@dataclass
class Fitted:
    """What the driver hands back: the adapter's training facts, its share of the fit's wall time and passes."""

    report: dict
    seconds: float
    passes: dict


def execute(
    spec: RunSpec,
    results_dir: str | Path,
    ws: Workspace,
    overwrite: bool = False,
    on_round: Callable[[dict], None] | None = None,
) -> RunOutcome:
    """Run one trajectory unless its record exists; write the record atomically."""
    (outcome,) = execute_together([spec], results_dir, ws, overwrite, [on_round])
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def execute_together(
    specs: list[RunSpec],
    results_dir: str | Path,
    ws: Workspace,
    overwrite: bool = False,
    on_round: list[Callable[[dict], None] | None] | None = None,
    on_outcome: Callable[[int, RunOutcome | Exception], None] | None = None,
) -> list[RunOutcome | Exception]:
    """Run several trajectories in lock step (batched runs); a run's failure comes back in its place.

    Each run is exactly what ``execute`` does alone: skipped when its record exists, locked while it runs,
    its record written atomically, a failure record on an exception. Every round, the adapters whose
    ``batch_key`` agree are trained by one ``fit_together`` call (CoOp: R context sets through one
    text-tower call; equal to training each alone, tested); everything else (selection, evaluation,
    diagnostics) runs per run. ``on_round[i]`` gets run i's round summaries; ``on_outcome(i, outcome)`` is
    called as soon as run i is settled (its record or failure record written, or skipped), so a caller
    interrupted later still knows which runs finished.
    """
    callbacks = list(on_round) if on_round else [None] * len(specs)
    outcomes = _Outcomes(len(specs), on_outcome)
    locks, live = [], {}
    try:
        for i, spec in enumerate(specs):
            spec = apply_profile(spec)
            spec.validate()
            run = store.resolve(spec, Path(results_dir), ws)
            loc = run.location
            if not overwrite and loc.read() is not None:
                outcomes.settle(i, RunOutcome(loc.record, loc.read(), skipped=True))
                continue
            from filelock import Timeout

            lock = loc.lock()
            try:
                lock.acquire(timeout=0)
            except Timeout:
                outcomes.settle(i, RunOutcome(loc.record, None, skipped=True))  # another process is running it now
                continue
            locks.append(lock)
            loc.remove_stale_temps()  # left by a writer killed mid-write; we hold the run's lock
            if not overwrite and loc.read() is not None:
                outcomes.settle(i, RunOutcome(loc.record, loc.read(), skipped=True))
                continue
            s_cls, a_cls = STRATEGIES.get(spec.strategy), ADAPTERS.get(spec.adapter)
            gen = _trajectory(
                spec, run.config, run.config_hash, run.backbone, run.dataset, ws, s_cls, a_cls, callbacks[i]
            )
            live[i] = (run, gen)
        started = {i: _advance(live, outcomes, i, None) for i in list(live)}
        while pending := {i: req for i, req in started.items() if req is not None}:
            for group in _fit_groups(pending):
                for i, fitted in zip(group, _fit(group, pending)):
                    started[i] = _advance(live, outcomes, i, fitted)
    finally:
        for lock in locks:
            lock.release()
    return outcomes.values


class _Outcomes:
    """Each run's outcome, reported to ``on_outcome`` the moment it is settled."""

    def __init__(self, n: int, on_outcome: Callable[[int, RunOutcome | Exception], None] | None) -> None:
        self.values: list = [None] * n
        self.on_outcome = on_outcome

    def settle(self, i: int, outcome: RunOutcome | Exception) -> None:
        self.values[i] = outcome
        if self.on_outcome:
            self.on_outcome(i, outcome)


def _fit_groups(pending: dict[int, FitRequest]) -> list[list[int]]:
    """Runs whose adapters train together: one class and one non-None ``batch_key``; the rest alone."""
    groups: dict = {}
    alone = []
    for i, req in pending.items():
        key = req.adapter.batch_key()
        if key is None:
            alone.append([i])
        else:
            groups.setdefault((type(req.adapter), key), []).append(i)
    return list(groups.values()) + alone


def _fit(group: list[int], pending: dict[int, FitRequest]) -> list[Fitted | Exception]:
    """Train one group's adapters (``fit_together``); each run gets its share of the time, the first the passes."""
    reqs = [pending[i] for i in group]
    t0 = time.perf_counter()
    cls = type(reqs[0].adapter)  # a group of one is its adapter's own fit (``Adapter.fit_together``)
    with accounting.measure() as passes:
        try:
            reports = cls.fit_together([r.adapter for r in reqs], [r.labeled for r in reqs], [r.pseudo for r in reqs])
        except Exception as exc:  # noqa: BLE001 - raised for the group as a whole: each of its runs fails with it
            reports = [exc] * len(reqs)
    share = (time.perf_counter() - t0) / len(reqs)
    return [
        rep if isinstance(rep, Exception) else Fitted(rep, share, passes if k == 0 else {})
        for k, rep in enumerate(reports)
    ]


def _advance(live: dict, outcomes: _Outcomes, i: int, fitted: Fitted | Exception | None) -> FitRequest | None:
    """Resume run i's trajectory with ``fitted``; its next request, or None when it finished (record or failure)."""
    run, gen = live[i]
    try:
        if fitted is None:
            return next(gen)
        if isinstance(fitted, Exception):
            return gen.throw(fitted)
        return gen.send(fitted)
    except StopIteration as done:
        record = done.value
        try:
            check_record(record)  # a nan accuracy fails the run with its reason instead of being recorded
        except Exception as exc:  # noqa: BLE001
            run.location.write_failure(run.config_hash, run.config, exc)
            outcomes.settle(i, exc)
            return None
        run.location.write(record)
        outcomes.settle(i, RunOutcome(run.location.record, record))
    except Exception as exc:  # noqa: BLE001 - this run failed; the others go on
        run.location.write_failure(run.config_hash, run.config, exc)
        outcomes.settle(i, exc)
    return None


def _encoder_passes(select: dict, train: dict, diagnostics: dict) -> dict:
    """A round's image-encoder images by phase; filling the frozen-feature cache (whichever phase first
    needed the features) is booked as ``caching``, not as that phase's work."""

    def own(p: dict) -> int:
        return p.get("image_encoder_images", 0) - p.get(CACHE_FILL, 0)

    return {
        "select": own(select),
        "train": own(train),
        "diagnostics": own(diagnostics),
        "caching": sum(p.get(CACHE_FILL, 0) for p in (select, train, diagnostics)),
    }


class _OwnWork:
    """A trajectory's own wall time and encoder counters, paused while it waits at a ``yield``.

    In lock step (``execute_together``) other runs work while one waits; the fit it waits for comes back
    with its share of time and passes (``Fitted``), which are added instead.
    """

    def __init__(self) -> None:
        self.t_start = time.perf_counter()
        self.waited = 0.0
        self.passes: Counter = Counter()
        self._since = accounting.COUNTERS.copy()

    def count_passes_from_here(self) -> None:
        self.passes.clear()
        self._since = accounting.COUNTERS.copy()

    def pause(self) -> None:
        self.passes.update(accounting.COUNTERS - self._since)
        self._t_pause = time.perf_counter()

    def resume(self, fitted: Fitted) -> None:
        self.waited += time.perf_counter() - self._t_pause - fitted.seconds
        self.passes.update(fitted.passes)
        self._since = accounting.COUNTERS.copy()

    def seconds(self) -> float:
        return time.perf_counter() - self.t_start - self.waited

    def total(self) -> dict:
        self.passes.update(accounting.COUNTERS - self._since)
        self._since = accounting.COUNTERS.copy()
        return dict(self.passes)


def _trajectory(spec, config, chash, backbone, task, ws, s_cls, a_cls, on_round):
    """One run, top to bottom; a generator that yields each round's training (``FitRequest``) to its driver
    and gets back ``Fitted`` (``execute`` trains alone; ``execute_together`` batches runs); returns the record."""
    own = _OwnWork()
    started = datetime.now(timezone.utc).isoformat()
    strategy = s_cls(**spec.strategy_options)
    adapter_options = dict(spec.adapter_options)
    n_pool, n_classes = len(task.pool), task.num_classes
    b = round_budget(spec, n_pool)
    bank = ws.bank(backbone, task)
    test_labels = task.test.labels
    rounds = []
    own.count_passes_from_here()  # the bank's set-up above is not this run's work
    env0 = AdapterEnv(backbone, task, bank, seed=spec.seed, round=0)
    zero_shot = ZeroShotClassifier(env0)
    zs_acc = accuracy(zero_shot.predict_logits("test"), test_labels)
    model = zero_shot
    labeled = np.zeros(0, dtype=np.int64)
    state: dict = {}
    for r in range(1, spec.rounds + 1):
        env = AdapterEnv(
            backbone,
            task,
            bank,
            seed=spec.seed,
            round=r,
            extra={"adapter": spec.adapter, "adapter_options": config["adapter_options"]},
        )
        ctx = RoundContext(
            round=r,
            budget=b,
            pool_size=n_pool,
            num_classes=n_classes,
            labeled=labeled,
            labels=task.pool.labels[labeled],
            rng=numpy_rng(spec.seed, "select", r),
            model=model,
            env=env,
            state=state,
        )
        t0 = time.perf_counter()
        protocol_random = s_cls.needs_labels and labeled.size == 0
        with accounting.measure() as sel_passes:
            if protocol_random:
                picked, mode = ctx.rng.choice(ctx.unlabeled, size=b, replace=False), "random (no labels yet)"
            else:
                picked, mode = strategy.select(ctx), spec.strategy
        picked = check_selection(spec.strategy, picked, ctx)
        t_sel = time.perf_counter() - t0
        labeled = np.concatenate([labeled, picked])
        adapter = a_cls(env, **adapter_options)
        pseudo = None
        if ctx.pseudo_labels is not None and a_cls.accepts_pseudo_labels:
            pseudo = Labeled(*ctx.pseudo_labels)
        own.pause()
        fitted = yield FitRequest(adapter, Labeled(labeled, task.pool.labels[labeled]), pseudo)
        own.resume(fitted)
        train_info, t_fit, fit_passes = fitted.report, fitted.seconds, fitted.passes
        t0 = time.perf_counter()
        test_logits = adapter.predict_logits("test")
        acc = accuracy(test_logits, test_labels)
        t_eval = time.perf_counter() - t0
        with accounting.measure() as diag_passes:
            diagnostics = round_diagnostics(
                ctx,
                ctx.unlabeled,
                picked,
                task.pool.labels,
                test_logits,
                test_labels,
                pseudo_used=pseudo is not None,
                protocol_random=protocol_random,
            )
        info = RoundRecord(
            round=r,
            labeled=int(labeled.size),
            budget_pct=round(100.0 * labeled.size / n_pool, 4),
            accuracy=acc,
            selection_mode=mode,
            selected=picked.tolist(),
            selected_class_hist=_class_hist(task.pool.labels[picked], n_classes),
            classes_covered=int(np.unique(task.pool.labels[labeled]).size),
            pseudo_labeled=0 if pseudo is None else len(pseudo),
            train=train_info,
            seconds={
                "select": round(t_sel, 4),
                "train": round(t_fit, 4),
                "evaluate": round(t_eval, 4),
                "diagnostics": diagnostics["seconds"],
            },
            encoder=_encoder_passes(sel_passes, fit_passes, diag_passes),
            diagnostics=diagnostics,
        ).to_dict()
        rounds.append(info)
        if on_round:
            on_round(info)
        model = adapter
    passes = own.total()
    return RunRecord(
        schema=SCHEMA,
        run_id=f"{spec.slug()}__{chash}",
        config_hash=chash,
        config=config,
        label=spec.label or spec.strategy,
        strategy=spec.strategy,
        adapter=spec.adapter,
        dataset=spec.dataset,
        seed=spec.seed,
        pool_size=n_pool,
        test_size=len(task.test),
        num_classes=n_classes,
        round_budget=b,
        zero_shot_accuracy=zs_acc,
        backbone=backbone.describe(),
        rounds=rounds,
        encoder_passes={"image_encoder_images": passes.get("image_encoder_images", 0)},
        plugins={
            "strategy": dataclasses.asdict(STRATEGIES.info(spec.strategy)),
            "adapter": dataclasses.asdict(ADAPTERS.info(spec.adapter)),
        },
        timing={
            "total_seconds": round(own.seconds(), 3),
            "started_at": started,
            "finished_at": datetime.now(timezone.utc).isoformat(),
        },
        environment=environment(),
        device=str(backbone.device),
        provenance=provenance(),
        compute={**backbone.compute.describe(), "deterministic": bool(ws.deterministic)},
    ).to_dict()
