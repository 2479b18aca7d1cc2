"""Action jobs, tasks, the audit log and idempotency keys in storage, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fleet_samples import blank_db_url  # noqa: F401  (fixture)
from sqlalchemy import Engine

from collectors.sample import utcnow
from fleetmon.storage.actions import (
    AuditRow,
    Idempotency,
    JobRow,
    TaskRow,
    audit_entries,
    end_abandoned,
    insert_audit,
    insert_job,
    job_by_id,
    power_before_last,
    recent_jobs,
    update_job,
    update_tasks,
)
from fleetmon.storage.engine import current_revision, head_revision, make_engine, upgrade


@pytest.fixture
def engine(blank_db_url: str) -> Engine:  # noqa: F811
    engine = make_engine(blank_db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _job(job_id: str, action: str = "sleep", state: str = "queued") -> JobRow:
    return JobRow(job_id, action, {}, {"site": "a"}, None, state, "key1", "ops", "operator", utcnow())


def test_migration_0008_goes_down_and_up_again(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    upgrade(engine, "head")
    from alembic import command

    from fleetmon.storage.engine import _alembic_config

    command.downgrade(_alembic_config(engine), "0007")
    assert current_revision(engine) == "0007"
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_a_job_and_its_tasks_round_trip_in_job_order(engine: Engine) -> None:
    tasks = [
        TaskRow("j1", 7, 1, "10.0.0.7", "queued", power_w_before=3100.0),
        TaskRow("j1", 3, 0, "10.0.0.3", "queued"),
    ]
    assert insert_job(engine, _job("j1"), tasks) is None
    update_tasks(
        engine, "j1", [7], state="failed", error_code="timeout", detail="no answer", finished_at=utcnow()
    )
    update_job(engine, "j1", state="partial", steps=[{"index": 0, "device_ids": [3, 7]}])
    found = job_by_id(engine, "j1")
    assert found is not None
    job, rows = found
    assert job.state == "partial" and job.steps == [{"index": 0, "device_ids": [3, 7]}]
    assert [(t.device_id, t.state, t.error_code) for t in rows] == [
        (3, "queued", None),
        (7, "failed", "timeout"),
    ]
    assert job_by_id(engine, "nope") is None


def test_the_same_idempotency_key_returns_the_first_job_even_when_sent_at_once(engine: Engine) -> None:
    results: list[object] = []

    def send(job_id: str) -> None:
        results.append(insert_job(engine, _job(job_id), [], Idempotency("k", "key1", "fp")))

    threads = [threading.Thread(target=send, args=(f"j{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = [job for job, _ in recent_jobs(engine, 10)]
    assert len(stored) == 1  # one job, whoever won
    earlier = [r for r in results if r is not None]
    assert len(earlier) == 3 and {r.job_id for r in earlier} == {stored[0].id}  # type: ignore[attr-defined]
    # Another principal's key of the same name is its own.
    assert insert_job(engine, _job("other"), [], Idempotency("k", "key2", "fp")) is None


def test_the_audit_log_filters_by_device_and_time_newest_first(engine: Engine) -> None:
    now = utcnow()
    for i, (devices, outcome) in enumerate([((1, 2), "accepted"), ((2,), "refused"), ((3,), "succeeded")]):
        insert_audit(
            engine,
            AuditRow(at=now + timedelta(seconds=i), action="sleep", outcome=outcome, device_ids=devices),
        )
    assert [e.outcome for e in audit_entries(engine, device_id=2)] == ["refused", "accepted"]
    assert [e.outcome for e in audit_entries(engine, since=now + timedelta(seconds=1))] == [
        "succeeded",
        "refused",
    ]
    assert [e.outcome for e in audit_entries(engine, limit=1)] == ["succeeded"]
    assert audit_entries(engine, device_id=9) == []


def test_a_restart_ends_the_jobs_it_left_running(engine: Engine) -> None:
    insert_job(
        engine,
        _job("run", state="running"),
        [TaskRow("run", 1, 0, "h", "running"), TaskRow("run", 2, 1, "h", "succeeded")],
    )
    insert_job(engine, _job("done", state="succeeded"), [])
    now = utcnow()
    ended = end_abandoned(engine, now, owner=None, stale_before=now, detail=lambda _job: "interrupted")
    assert [job.id for job in ended] == ["run"]  # no owner: stored as before job leases, so stale
    found = job_by_id(engine, "run")
    assert found is not None
    job, tasks = found
    assert job.state == "failed" and job.finished_at is not None
    assert [t.state for t in tasks] == ["cancelled", "succeeded"]


def test_wake_finds_the_power_a_device_drew_before_it_slept(engine: Engine) -> None:
    insert_job(
        engine,
        _job("s1"),
        [TaskRow("s1", 1, 0, "h", "succeeded", power_w_before=3200.0, finished_at=utcnow())],
    )
    insert_job(
        engine, _job("s2", action="reboot"), [TaskRow("s2", 2, 0, "h", "succeeded", power_w_before=99.0)]
    )
    assert power_before_last(engine, [1, 2, 3], ["sleep"]) == {1: 3200.0}
