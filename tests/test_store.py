"""The run store names every file of a run, and the executor, launchers and status agree with it."""

import dataclasses
import json

import pytest

from albench.engine import store
from albench.engine.grid import run_state
from albench.engine.launchers import run_one
from albench.engine.protocol import RunSpec, Workspace, execute, record_path
from albench.engine.schema import RoundRecord, RunRecord


def test_location_names_record_lock_and_failure(tmp_path):
    loc = store.location(tmp_path, "digits", "random__coop__seed1", "abc123")
    assert loc.record == tmp_path / "digits" / "random__coop__seed1__abc123.json"
    assert loc.lock_file == tmp_path / ".locks" / "random__coop__seed1__abc123.lock"
    assert loc.failure == tmp_path / "failed" / "digits" / "random__coop__seed1__abc123.json"
    assert record_path(tmp_path, RunSpec("random", "coop", "digits"), "abc123") == loc.record


def test_failure_record_then_record(tmp_path):
    loc = store.location(tmp_path, "digits", "random__coop__seed1", "abc123")
    assert loc.read() is None and loc.failure_error() is None and not loc.running()
    assert not (tmp_path / ".locks").exists()  # asking about a run creates nothing
    try:
        raise ValueError("boom")
    except ValueError as exc:
        loc.write_failure("abc123", {"seed": 1}, exc)
    fail = json.loads(loc.failure.read_text())
    assert fail["error"] == "ValueError: boom" and "raise ValueError" in fail["traceback"]
    assert loc.failure_error() == "ValueError: boom"
    loc.record.parent.mkdir(parents=True)
    loc.record.write_text("{not json")
    assert loc.read() is None  # a damaged record is never data


def test_running_sees_another_holder(tmp_path):
    loc = store.location(tmp_path, "digits", "random__coop__seed1", "abc123")
    held = loc.lock()
    held.acquire(timeout=0)
    try:
        assert loc.running()
    finally:
        held.release()
    assert not loc.running()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("cache"), device="cpu", progress=False)


def test_executor_launcher_and_status_agree(tmp_path, ws):
    spec = RunSpec("random", "zeroshot", "digits", rounds=1, round_budget=5)
    resolved = store.resolve(spec, tmp_path, ws)
    assert run_state(spec, tmp_path, ws).state == "pending"
    assert run_state(spec, tmp_path, ws).path == resolved.location.record
    res = run_one(spec, tmp_path, ws)
    assert res.status == "done" and res.path == str(resolved.location.record)
    rec = resolved.location.read()
    assert rec["config_hash"] == resolved.config_hash
    # the record is exactly the documented schema, in field order
    assert list(rec) == [f.name for f in dataclasses.fields(RunRecord)]
    assert [list(r) for r in rec["rounds"]] == [[f.name for f in dataclasses.fields(RoundRecord)]]
    assert run_state(spec, tmp_path, ws).state == "done"
    assert execute(spec, tmp_path, ws).skipped


def test_unresolved_failure_names_the_spec(tmp_path, ws):
    spec = RunSpec("random", "zeroshot", "dtd", data_root=str(tmp_path / "nowhere"))
    res = run_one(spec, tmp_path, ws)
    assert res.status == "failed" and res.failure_record.endswith("failed/dtd/random__zeroshot__seed1__unresolved.json")
    assert run_state(spec, tmp_path, ws).state == "unresolved"
