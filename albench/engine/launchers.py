"""Launchers: run a grid's specs in-process, in local worker processes, or via submitit (Slurm).

Every launcher calls ``run_one`` for each spec, and ``run_one`` calls
``protocol.execute``, which skips runs whose record exists and holds a per-run
file lock while running. Resume, idempotence and locking therefore come from
the run itself; a launcher only decides where runs execute. A run that raises
leaves a failure record (error + traceback) and comes back as ``failed``; the
launcher carries on with the rest.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from albench.api.errors import AlbenchError
from albench.api.registry import Registry

# Launchers are found like every other pluggable piece: entry points of the group albench.launchers
# (albench's own two declared in pyproject.toml), each a function ``launch(request: LaunchRequest) ->
# list[RunResult]``.
LAUNCHERS: Registry = Registry("launcher", "albench.launchers", None)

BATCH_RUNS = 3  # default of ``albench run --batch-runs``: a column's three table seeds train together


@dataclass
class RunResult:
    """What a launcher reports about one spec."""

    dataset: str
    slug: str
    status: str  # done | skipped | busy | failed
    path: str | None = None
    error: str | None = None
    accuracies: dict = field(default_factory=dict)  # round -> accuracy
    zero_shot: float | None = None
    seconds: float | None = None
    failure_record: str | None = None
    record: dict | None = None  # only in-process (not shipped back from workers)

    @property
    def name(self) -> str:
        return f"{self.dataset} {self.slug}"

    def line(self, budget_rounds: dict | None = None) -> str:
        """One-line summary of a finished run."""
        if self.status == "failed":
            return f"FAILED  {self.name}: {self.error}  [failure record: {self.failure_record}]"
        if self.status == "busy":
            return f"busy    {self.name}: another process is running it"
        head = "done   " if self.status == "done" else "skip   "
        shown = budget_rounds or {r: r for r in sorted(self.accuracies)}
        accs = ", ".join(f"{b:g}%: {self.accuracies[r]:.1f}" for b, r in shown.items() if r in self.accuracies)
        tail = f" | {self.seconds:.1f}s" if self.seconds is not None and self.status == "done" else " | record exists"
        zs = f"zero-shot {self.zero_shot:.1f} | " if self.zero_shot is not None else ""
        return f"{head} {self.name} | {zs}{accs}{tail}"


class Interrupted(Exception):
    """Ctrl-C (SIGINT) stopped a launcher; ``results`` are the runs that finished before it."""

    def __init__(self, results: list, not_finished: list):
        super().__init__("interrupted")
        self.results, self.not_finished = results, not_finished


def run_one(
    spec,
    results_dir: str | Path,
    ws,
    overwrite: bool = False,
    on_round: Callable[[dict], None] | None = None,
    log_to: tuple[str, ...] = (),
) -> RunResult:
    """Execute one spec (skip if recorded, lock while running); never raises for a failing run.

    ``log_to``: experiment trackers fed through the per-round callback (``albench.engine.trackers``).
    """
    return run_group([spec], results_dir, ws, overwrite, [on_round], log_to)[0]


def run_group(
    specs: list,
    results_dir: str | Path,
    ws,
    overwrite: bool = False,
    on_round: list[Callable[[dict], None] | None] | None = None,
    log_to: tuple[str, ...] = (),
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Execute specs in lock step (``protocol.execute_together``: batched runs); never raises for a failing run.

    ``on_result`` gets each run's result as soon as it is settled (unresolvable runs first).
    """
    from albench.engine import store
    from albench.engine.protocol import execute_together

    results_dir = Path(results_dir)
    callbacks: list[Callable[[dict], None] | None] = list(on_round) if on_round else [None] * len(specs)
    results = [RunResult(sp.dataset, sp.slug(), "failed") for sp in specs]
    runnable, locations, loggers = [], {}, {}
    for i, spec in enumerate(specs):
        try:
            locations[i] = store.resolve(spec, results_dir, ws).location
        except Exception as exc:  # cannot even name the run: missing data, unreadable weights
            results[i].error = f"{type(exc).__name__}: {exc}"
            results[i].failure_record = str(store.unresolved_failure(results_dir, spec, exc))
            if on_result:
                on_result(results[i])
            continue
        results[i].path = str(locations[i].record)
        runnable.append(i)
        if log_to:
            from albench.engine.trackers import RunLoggers

            loggers[i] = RunLoggers(log_to, spec, results_dir)
            callbacks[i] = _chain(loggers[i].on_round, callbacks[i])
    if not runnable:
        return results

    def settle(k: int, outcome) -> None:  # as soon as the run is settled, before the group ends
        i = runnable[k]
        _fill(results[i], outcome, locations[i].failure, loggers.get(i))
        if on_result:
            on_result(results[i])
        reported.add(i)

    reported: set[int] = set()
    try:
        execute_together(
            [specs[i] for i in runnable],
            results_dir,
            ws,
            overwrite=overwrite,
            on_round=[callbacks[i] for i in runnable],
            on_outcome=settle,
        )
    except Exception as exc:  # the group could not start (e.g. a bad spec): every run in it failed
        for k, i in enumerate(runnable):
            if i not in reported:
                settle(k, exc)
    for i in runnable:
        if i not in reported:  # unreachable unless a driver bug skipped a run: say so rather than report "done"
            results[i].error = "the run was not executed"
            if on_result:
                on_result(results[i])
    return results


def _fill(res: RunResult, outcome, failure_path, logger) -> None:
    """A settled run's ``RunResult`` from its outcome (a ``RunOutcome`` or the exception it failed with)."""
    if isinstance(outcome, BaseException):
        if logger:
            logger.finish(None)
        res.error = f"{type(outcome).__name__}: {outcome}"
        res.failure_record = str(failure_path)
        return
    if logger:
        logger.finish(outcome.record)
    if outcome.record is None:
        res.status = "busy"
        return
    rec = outcome.record
    res.status = "skipped" if outcome.skipped else "done"
    res.record = rec
    res.accuracies = {r["round"]: r["accuracy"] for r in rec["rounds"]}
    res.zero_shot = rec.get("zero_shot_accuracy")
    res.seconds = rec.get("timing", {}).get("total_seconds")


def _chain(first: Callable[[dict], None], then: Callable[[dict], None] | None) -> Callable[[dict], None]:
    """A per-round callback: the trackers, then the caller's callback."""

    def on_round(info: dict) -> None:
        first(info)
        if then:
            then(info)

    return on_round


def _own_attributes(cls: type) -> set[str]:
    """Names defined by ``cls`` or a base below ``Adapter`` (what a plugin overrides)."""
    from albench.api.adapter import Adapter

    return {name for base in cls.__mro__ if issubclass(base, Adapter) and base is not Adapter for name in vars(base)}


def batch_units(specs: list, batch_runs: int) -> list[list]:
    """The grid's specs in units of up to ``batch_runs`` runs that may train together, in grid order.

    Runs differing only in their seed (same column, dataset and options) share a unit when their adapter
    implements ``fit_together`` (``albench.api.adapter.Adapter``); all other runs are units of one.
    """
    from albench.api.plugins import ADAPTERS
    from albench.engine.protocol import canonical

    if batch_runs < 1:
        raise AlbenchError(f"{{field}} must be at least 1, got {batch_runs}.", field="batch_runs")
    units: list[list] = []
    open_units: dict = {}
    for sp in specs:
        cls = ADAPTERS.get(sp.adapter) if sp.adapter in ADAPTERS else None
        if batch_runs == 1 or cls is None or "fit_together" not in _own_attributes(cls):
            units.append([sp])
            continue
        key = canonical({**dataclasses.asdict(sp), "seed": None, "label": None})
        unit = open_units.get(key)
        if unit is None or len(unit) >= batch_runs:
            unit = open_units[key] = []
            units.append(unit)
        unit.append(sp)
    return units


# --- local: in-process or worker processes --------------------------------------

_WORKER: dict = {}


def die_with_parent(parent: int, interval: float = 0.5) -> None:
    """Make this process end when ``parent`` does, however the parent ends (SIGKILL included).

    Two mechanisms, because each has a gap: Linux's parent-death signal (``PR_SET_PDEATHSIG``; fires when
    the *thread* that forked us exits, which is the main thread here) and a heartbeat thread that sees the
    process re-parented (``os.getppid()`` changes) within ``interval`` seconds on any POSIX system. A worker
    killed this way holds no lock (file locks die with their process) and leaves at most a temp file,
    which the next run of that record removes; rerunning the grid finishes it.
    """
    import os
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="albench-parent-watch", daemon=True).start()


def _init_worker(
    cache_dir, devices, counter, events, precision: str = "auto", deterministic: bool = False, parent: int | None = None
) -> None:
    """Per-process setup: dies with the parent; its own Workspace, on its own device (one per visible GPU)."""
    import os

    if parent is not None:
        die_with_parent(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from albench.engine.protocol import Workspace

    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    device = devices[slot % len(devices)]
    _WORKER.update(
        ws=Workspace(cache_dir, device=device, progress=False, precision=precision, deterministic=deterministic),
        events=events,
        slot=slot,
        device=device,
    )


def _worker_run(unit: list, results_dir, overwrite, log_to: tuple[str, ...] = ()) -> list[RunResult]:
    events = _WORKER["events"]

    def tick(info: dict) -> None:
        events.put(("round", _WORKER["slot"], info["round"]))

    results = run_group(unit, results_dir, _WORKER["ws"], overwrite, [tick] * len(unit), log_to=log_to)
    for res in results:
        res.record = None  # keep the answer small; the record is on disk
    return results


def local_devices(device: str, workers: int) -> list[str]:
    """Devices for the workers: one per visible GPU with --device auto, else the given one."""
    if device == "auto":
        import torch

        n = torch.cuda.device_count()
        if n:
            return [f"cuda:{i}" for i in range(n)]
        return ["cpu"]
    return [device]


def run_local(
    specs,
    results_dir,
    *,
    ws_factory,
    workers: int = 1,
    overwrite: bool = False,
    cache_dir=None,
    device: str = "auto",
    rounds: int = 6,
    report: Callable[[RunResult], None] | None = None,
    progress: bool = True,
    precision: str = "auto",
    deterministic: bool = False,
    log_to: tuple[str, ...] = (),
    batch_runs: int = 1,
) -> list[RunResult]:
    """Run specs here (``workers == 1``) or in ``workers`` spawned processes that pull units one at a time.

    A unit is one run, or up to ``batch_runs`` runs of one column and dataset that train together
    (``batch_units``; records equal to running them one by one).
    """
    from tqdm.auto import tqdm

    if workers < 1:
        raise AlbenchError(f"{{field}} must be at least 1, got {workers}.", field="workers")
    units = batch_units(list(specs), batch_runs)
    results: list[RunResult] = []
    bar = tqdm(total=len(specs), desc="runs", unit="run", position=0, disable=not progress)

    def finish(res: RunResult) -> None:
        results.append(res)
        bar.update(1)
        if report:
            report(res)

    def not_finished() -> list:
        finished = {(r.dataset, r.slug) for r in results}
        return [sp for sp in specs if (sp.dataset, sp.slug()) not in finished]

    if workers == 1:
        try:
            ws = ws_factory()
            for unit in units:
                bar.set_postfix_str(
                    f"{unit[0].dataset} {unit[0].slug()}" + (f" (+{len(unit) - 1})" if len(unit) > 1 else "")
                )
                rbar = tqdm(
                    total=sum(sp.rounds for sp in unit),
                    desc="rounds",
                    unit="round",
                    position=1,
                    leave=False,
                    disable=not progress,
                )

                def tick(info: dict) -> None:
                    rbar.update(1)
                    rbar.set_postfix(acc=f"{info['accuracy']:.1f}")

                run_group(unit, results_dir, ws, overwrite, [tick] * len(unit), log_to=log_to, on_result=finish)
                rbar.close()
        except KeyboardInterrupt:  # the runs in flight wrote nothing (records are atomic) and released their locks
            bar.close()
            raise Interrupted(results, not_finished()) from None
        bar.close()
        return results

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")
    devices = local_devices(device, workers)
    import os

    events = ctx.Queue()  # a plain queue: no manager process that could outlive a killed parent
    counter = ctx.Value("i", 0)
    rbar = tqdm(
        total=len(specs) * rounds,
        desc="rounds (all workers)",
        unit="round",
        position=1,
        leave=False,
        disable=not progress,
    )
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(cache_dir, devices, counter, events, precision, deterministic, os.getpid()),
        ) as pool:
            futures = {pool.submit(_worker_run, unit, str(results_dir), overwrite, log_to): unit for unit in units}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        events.get_nowait()
                    except queue.Empty:
                        break
                    rbar.update(1)
                for f in done:
                    unit = futures[f]
                    try:
                        unit_results = f.result()
                    except BrokenProcessPool as exc:
                        unit_results = [
                            RunResult(sp.dataset, sp.slug(), "failed", error=f"worker process died: {exc}")
                            for sp in unit
                        ]
                    except Exception as exc:
                        unit_results = [
                            RunResult(sp.dataset, sp.slug(), "failed", error=f"{type(exc).__name__}: {exc}")
                            for sp in unit
                        ]
                    for sp, res in zip(unit, unit_results):
                        if res.status != "done":  # skipped runs count their rounds as done
                            rbar.update(sp.rounds)
                        finish(res)
    except KeyboardInterrupt:  # workers got the same Ctrl-C; drop the queued runs
        raise Interrupted(results, not_finished()) from None
    finally:
        rbar.close()
        bar.close()
        events.close()
    return results


# --- slurm via submitit ------------------------------------------------------------


def _slurm_job(
    spec,
    results_dir: str,
    overwrite: bool,
    cache_dir,
    device: str,
    precision: str = "auto",
    deterministic: bool = False,
) -> RunResult:
    """Body of one array task: build a Workspace on the node and run the spec."""
    from albench.engine.protocol import Workspace

    ws = Workspace(cache_dir, device=device, progress=False, precision=precision, deterministic=deterministic)
    res = run_one(spec, results_dir, ws, overwrite)
    res.record = None
    return res


@dataclass
class SlurmOptions:
    executor: str = "slurm"  # slurm | local | debug (submitit's executors; local/debug for tests and laptops)
    partition: str | None = None
    timeout_min: int = 240
    gpus_per_node: int = 1
    cpus_per_task: int = 4
    mem_gb: float | None = None
    array_parallelism: int = 64
    folder: str | None = None  # submitit logs; default <results>/.submitit
    wait: bool = True


def run_slurm(
    specs,
    results_dir,
    opts: SlurmOptions,
    *,
    overwrite: bool = False,
    cache_dir=None,
    device: str = "auto",
    report: Callable[[RunResult], None] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    precision: str = "auto",
    deterministic: bool = False,
) -> list[RunResult]:
    """Submit the specs as one job array (one task per run) and, by default, wait for them."""
    try:
        import submitit
    except ImportError:
        raise AlbenchError("--launcher slurm needs submitit: pip install 'albench[slurm]'.") from None
    from tqdm.auto import tqdm

    folder = Path(opts.folder or Path(results_dir) / ".submitit") / "%j"
    try:
        ex = submitit.AutoExecutor(folder=folder, cluster=opts.executor)
    except Exception as exc:
        raise AlbenchError(f"submitit cannot use the '{opts.executor}' executor here: {exc}") from exc
    params = dict(
        name="albench",
        timeout_min=opts.timeout_min,
        gpus_per_node=opts.gpus_per_node,
        cpus_per_task=opts.cpus_per_task,
        slurm_array_parallelism=opts.array_parallelism,
    )
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    ex.update_parameters(**params)
    todo = list(specs)
    n = len(todo)
    jobs = ex.map_array(
        _slurm_job,
        todo,
        [str(results_dir)] * n,
        [overwrite] * n,
        [cache_dir] * n,
        [device] * n,
        [precision] * n,
        [deterministic] * n,
    )
    echo(
        f"submitted {n} run(s) as {opts.executor} job array {jobs[0].job_id.split('_')[0] if jobs else '-'}; "
        f"logs in {folder.parent}"
    )
    if not opts.wait:
        return [RunResult(sp.dataset, sp.slug(), "submitted", error=None) for sp in todo]
    results: list[RunResult] = []
    bar = tqdm(total=n, desc="runs", unit="run", disable=not progress)
    left = dict(zip(range(n), jobs))
    while left:
        for i, job in list(left.items()):
            if not job.done():
                continue
            sp = todo[i]
            try:
                res = job.result()
            except Exception as exc:  # the job itself died (time limit, node failure, OOM)
                res = RunResult(
                    sp.dataset,
                    sp.slug(),
                    "failed",
                    error=f"job {job.job_id} failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}",
                )
            results.append(res)
            bar.update(1)
            if report:
                report(res)
            del left[i]
        if left:
            time.sleep(0.5)
    bar.close()
    return results


def summarise_results(results: list[RunResult]) -> dict:
    out: dict = {}
    for r in results:
        out[r.status] = out.get(r.status, 0) + 1
    return out


@dataclass
class LaunchRequest:
    """Everything a launcher is given: the runs and how the user asked to run them (one signature for all)."""

    specs: list
    results_dir: str | Path
    overwrite: bool = False
    cache_dir: str | Path | None = None
    device: str = "auto"
    precision: str = "auto"
    deterministic: bool = False
    progress: bool = True
    report: Callable[[RunResult], None] | None = None
    echo: Callable[[str], None] = print
    workers: int = 1  # local: worker processes
    batch_runs: int = 1  # local: runs of one column and dataset that train together (``batch_units``)
    ws_factory: Callable[[], object] | None = None  # local, one worker: the workspace the preflight used
    log_to: tuple[str, ...] = ()  # local: experiment trackers
    slurm: SlurmOptions = field(default_factory=SlurmOptions)


def launch_local(req: LaunchRequest) -> list[RunResult]:
    """The ``local`` launcher: in this process, or in ``req.workers`` spawned processes."""

    def default_ws():
        from albench.engine.protocol import Workspace

        return Workspace(
            req.cache_dir,
            device=req.device,
            progress=req.progress,
            precision=req.precision,
            deterministic=req.deterministic,
        )

    return run_local(
        req.specs,
        req.results_dir,
        ws_factory=req.ws_factory or default_ws,
        workers=req.workers,
        overwrite=req.overwrite,
        cache_dir=req.cache_dir,
        device=req.device,
        rounds=req.specs[0].rounds,
        report=req.report,
        progress=req.progress,
        precision=req.precision,
        deterministic=req.deterministic,
        log_to=req.log_to,
        batch_runs=req.batch_runs,
    )


def launch_slurm(req: LaunchRequest) -> list[RunResult]:
    """The ``slurm`` launcher: one submitit job array, one task per run."""
    return run_slurm(
        req.specs,
        req.results_dir,
        req.slurm,
        overwrite=req.overwrite,
        cache_dir=req.cache_dir,
        device=req.device,
        report=req.report,
        progress=req.progress,
        echo=req.echo,
        precision=req.precision,
        deterministic=req.deterministic,
    )
