"""Job leases and idempotency-key expiry, on SQLite and PostgreSQL: several collecting processes share
one database, so a process that starts (or its housekeeping) ends only the jobs nobody runs any more,
and an Idempotency-Key is forgotten after its time to live.

Two JobRunners with different `actions.instance` names act on one database from one event loop, as two
collecting processes would. A running job is a ramp whose first step acts on a loopback address where
nothing listens (127.46.8.0/24, refused at once) and whose next step waits an hour: it stays `running`
until it is cancelled. Time is moved by `now` arguments and backdated rows, never by sleeping.

Test addresses: 127.46.8.0/24 only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from fleet_samples import blank_db_url, db_url, wait_until  # noqa: F401  (fixtures)
from sqlalchemy import Engine, event, func, inspect, select

from collectors.sample import State, utcnow
from collectors.targets import Target
from fleetmon.config import ActionSettings, CollectorSettings, Settings
from fleetmon.service.jobs import STALE_BEATS, JobRunner, RunningJob
from fleetmon.service.power import SitePower
from fleetmon.service.ramp import Candidate, JobAction, RampRule
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.storage.actions import (
    IDEMPOTENCY,
    JOBS,
    Idempotency,
    JobRow,
    TaskRow,
    end_abandoned,
    insert_job,
    job_by_id,
    purge_idempotency,
)
from fleetmon.storage.engine import make_engine

HEARTBEAT_S = 15.0
STALE = timedelta(seconds=STALE_BEATS * HEARTBEAT_S)
NOBODY = "127.46.8.{}"  # nothing listens: each action task fails at once (connection refused)


class NoFleet:
    """FleetAccess of a process whose poller has no identity cached and measures no power."""

    def identity_of(self, target: Target) -> None:
        return None

    def site_power(self, sites: tuple[str, ...]) -> SitePower | None:
        return None

    async def wait_for_poll(self, after: float, timeout: float) -> bool:
        return True


def _settings(instance: str, heartbeat_s: float = HEARTBEAT_S) -> Settings:
    return Settings(
        collector=CollectorSettings(timeout_s=2.0, connect_timeout_s=0.5),
        actions=ActionSettings(
            instance=instance, heartbeat_s=heartbeat_s, connect_timeout_s=0.5, read_timeout_s=0.5, timeout_s=1
        ),
    )


def _runner(engine: Engine, instance: str, heartbeat_s: float = HEARTBEAT_S) -> JobRunner:
    return JobRunner(_settings(instance, heartbeat_s), engine, NoFleet(), poll_interval_s=1.0)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def runners(engine: Engine) -> AsyncIterator[list[JobRunner]]:
    """Runners a test makes (append them); every one closed at the end, before the engine goes."""
    made: list[JobRunner] = []
    yield made
    for runner in made:
        await runner.close()


def _row(job_id: str, state: str, owner: str | None, silent_s: float | None) -> JobRow:
    """A stored job of `owner` whose last heartbeat was `silent_s` ago (None: no heartbeat)."""
    now = utcnow()
    beat = None if silent_s is None else now - timedelta(seconds=silent_s)
    return JobRow(
        job_id,
        "locate",
        {"on": True},
        None,
        None,
        state,
        "key1",
        "ops",
        "operator",
        now - timedelta(hours=1),
        owner=owner,
        heartbeat_at=beat,
    )


def _store(engine: Engine, job: JobRow) -> None:
    assert insert_job(engine, job, [TaskRow(job.id, 1, 0, "h", job.state)]) is None


async def _start_running(engine: Engine, runner: JobRunner, job_id: str) -> None:
    """Store a job owned by `runner` (as a POST does) and run it until it is `running` for an hour."""
    devices = [
        Candidate(
            device_id=i,
            host=NOBODY.format(i),
            port=4028,
            site="a",
            model=None,
            state=State.MINING,
            power_w=None,
        )
        for i in (1, 2)
    ]
    now = utcnow()
    row = JobRow(
        job_id,
        "locate",
        {"on": True},
        None,
        None,
        "queued",
        "key1",
        "ops",
        "operator",
        now,
        owner=runner.instance,
        heartbeat_at=now,
    )
    tasks = [TaskRow(job_id, d.device_id, i, d.host, "queued") for i, d in enumerate(devices)]
    assert insert_job(engine, row, tasks) is None
    runner.start(
        RunningJob(
            id=job_id,
            action=JobAction.LOCATE,
            on=True,
            watts=None,
            devices=devices,
            rule=RampRule(step_devices=1, step_kw=None, interval_s=3600, target_site_kw=None),
            sites=(),
            steps=[],
            actor_key_id="key1",
            actor_name="ops",
            role="operator",
            params={"on": True},
        )
    )

    def first_step_done() -> bool:
        found = job_by_id(engine, job_id)
        assert found is not None
        job, tasks = found
        return job.state == "running" and tasks[0].state == "failed"

    assert await wait_until(first_step_done), "the job never got to its second step"


def _job(engine: Engine, job_id: str) -> JobRow:
    found = job_by_id(engine, job_id)
    assert found is not None
    return found[0]


# ---- two collecting processes on one database -----------------------------------------------------


async def test_restarting_one_instance_leaves_the_other_instances_running_job_running(
    engine: Engine, runners: list[JobRunner]
) -> None:
    north = _runner(engine, "collector-north")
    runners.append(north)
    await _start_running(engine, north, "north-job")
    # collector-south died a moment ago in the middle of a job: its heartbeat is still fresh.
    _store(engine, _row("south-job", "running", "collector-south", silent_s=1))

    south = _runner(engine, "collector-south")  # ... and starts again
    runners.append(south)
    ended = await south.recover()

    assert [job.id for job in ended] == ["south-job"]
    own = _job(engine, "south-job")
    assert own.state == "failed" and own.finished_at is not None
    assert own.detail == "interrupted: the service (collector-south) stopped before it ended"
    found = job_by_id(engine, "south-job")
    assert found is not None and [t.state for t in found[1]] == ["cancelled"]

    other = job_by_id(engine, "north-job")
    assert other is not None
    assert (
        other[0].state == "running" and other[0].finished_at is None and other[0].owner == "collector-north"
    )
    assert [t.state for t in other[1]] == ["failed", "queued"]  # its second step still to come
    assert north.running("north-job") is not None


async def test_a_stale_job_is_ended_by_another_instances_start_and_a_fresh_one_is_not(
    engine: Engine, runners: list[JobRunner]
) -> None:
    silent = STALE.total_seconds() + 5
    _store(engine, _row("dead", "running", "collector-east", silent_s=silent))
    _store(engine, _row("queued-dead", "queued", "collector-east", silent_s=silent))
    _store(engine, _row("alive", "running", "collector-west", silent_s=STALE.total_seconds() - 5))
    _store(engine, _row("before-0010", "running", None, silent_s=None))  # stored before job leases
    _store(engine, _row("done", "succeeded", "collector-east", silent_s=silent))

    starting = _runner(engine, "collector-north")
    runners.append(starting)
    ended = await starting.recover()

    assert sorted(job.id for job in ended) == ["before-0010", "dead", "queued-dead"]
    dead = _job(engine, "dead")
    assert dead.state == "failed"
    assert (
        dead.detail == f"interrupted: its owner collector-east fell silent (no heartbeat for {silent:.0f} s)"
    )
    assert "no owner" in (_job(engine, "before-0010").detail or "")
    assert _job(engine, "alive").state == "running"
    assert _job(engine, "done").state == "succeeded"


async def test_housekeeping_ends_the_jobs_of_an_owner_that_died_and_never_its_own(
    engine: Engine, runners: list[JobRunner]
) -> None:
    runtime = ServiceRuntime(settings=_settings("collector-north"), engine=engine)
    north = _runner(engine, "collector-north")
    runners.append(north)
    runtime.jobs = north
    await _start_running(engine, north, "north-job")
    south = _runner(engine, "collector-south")
    runners.append(south)
    await _start_running(engine, south, "south-job")

    # Nothing is stale yet: housekeeping leaves both running.
    await runtime.maintain()
    assert _job(engine, "north-job").state == _job(engine, "south-job").state == "running"

    # collector-south dies (its process is gone: nothing renews its heartbeat any more); a minute and
    # more later collector-north's housekeeping runs. North's own job is renewed, then checked.
    later = utcnow() + STALE + timedelta(seconds=30)
    assert await north.beat(later) == 1
    await runtime.maintain(later)

    dead = _job(engine, "south-job")
    assert dead.state == "failed"
    assert dead.detail is not None and dead.detail.startswith(
        "interrupted: its owner collector-south fell silent"
    )
    assert _job(engine, "north-job").state == "running"
    # The dead owner's jobs stay ended if it comes back to life: its heartbeat renews nothing.
    assert await south.beat(later) == 0


async def test_housekeeping_never_ends_a_job_this_process_runs_even_when_its_heartbeat_lags(
    engine: Engine, runners: list[JobRunner]
) -> None:
    runtime = ServiceRuntime(settings=_settings("collector-north"), engine=engine)
    north = _runner(engine, "collector-north")
    runners.append(north)
    runtime.jobs = north
    await _start_running(engine, north, "north-job")
    await runtime.maintain(utcnow() + STALE * 10)  # its database writes were failing for ten minutes
    assert _job(engine, "north-job").state == "running"


async def test_one_heartbeat_renews_every_running_job_of_the_process_in_one_update(
    engine: Engine, runners: list[JobRunner]
) -> None:
    north = _runner(engine, "collector-north")
    runners.append(north)
    await _start_running(engine, north, "one")
    await _start_running(engine, north, "two")
    _store(engine, _row("someone-elses", "running", "collector-south", silent_s=1))
    before = _job(engine, "someone-elses").heartbeat_at

    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            statements.append(statement)

    later = utcnow() + timedelta(seconds=HEARTBEAT_S)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert await north.beat(later) == 2
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1 and "heartbeat_at" in statements[0]
    assert _job(engine, "one").heartbeat_at == _job(engine, "two").heartbeat_at == later
    assert _job(engine, "someone-elses").heartbeat_at == before


async def test_the_runner_renews_its_heartbeats_by_itself_while_it_runs_jobs(
    engine: Engine, runners: list[JobRunner]
) -> None:
    north = _runner(engine, "collector-north", heartbeat_s=0.05)
    runners.append(north)
    await _start_running(engine, north, "north-job")
    first = _job(engine, "north-job").heartbeat_at
    assert first is not None
    assert await wait_until(lambda: (_job(engine, "north-job").heartbeat_at or first) > first)


# ---- idempotency keys expire ------------------------------------------------------------------------

TTL = timedelta(hours=24)
T = utcnow()


def _keyed(engine: Engine, job_id: str, minutes: float, fingerprint: str = "fp") -> str | None:
    """POST `job_id` with key "k" at T + `minutes`; the job id the key answers with (None: a new job)."""
    at = T + timedelta(minutes=minutes)
    job = JobRow(job_id, "sleep", {}, None, None, "queued", "key1", "ops", "operator", at)
    earlier = insert_job(engine, job, [], Idempotency("k", "key1", fingerprint), forget_before=at - TTL)
    return None if earlier is None else earlier.job_id


def test_an_idempotency_key_returns_the_first_job_within_its_ttl_and_a_new_one_after(engine: Engine) -> None:
    assert _keyed(engine, "first", 0) is None
    assert _keyed(engine, "retry", 60) == "first"
    assert _keyed(engine, "last-minute", 24 * 60 - 1) == "first"
    # A day later the key is forgotten even though housekeeping has not purged it: a new request.
    assert _keyed(engine, "next-day", 24 * 60 + 1, fingerprint="another body") is None
    assert _keyed(engine, "retry-next-day", 24 * 60 + 2, fingerprint="another body") == "next-day"
    with engine.connect() as conn:
        keys = conn.execute(select(IDEMPOTENCY.c.key, IDEMPOTENCY.c.job_id)).all()
        jobs = conn.execute(select(func.count()).select_from(JOBS)).scalar_one()
    assert [tuple(k) for k in keys] == [("k", "next-day")] and jobs == 2


def test_purging_deletes_only_the_expired_idempotency_keys(engine: Engine) -> None:
    for i, hours in enumerate([-30.0, -24.5, -23.5, -1.0]):
        at = T + timedelta(hours=hours)
        job = JobRow(f"j{i}", "sleep", {}, None, None, "succeeded", "key1", "ops", "operator", at)
        assert insert_job(engine, job, [], Idempotency(f"k{i}", "key1", "fp")) is None
    assert purge_idempotency(engine, T - TTL) == 2
    with engine.connect() as conn:
        left = sorted(conn.execute(select(IDEMPOTENCY.c.key)).scalars())
        jobs = conn.execute(select(func.count()).select_from(JOBS)).scalar_one()
    assert left == ["k2", "k3"] and jobs == 4  # the jobs themselves stay
    assert purge_idempotency(engine, T - TTL) == 0


async def test_housekeeping_purges_expired_idempotency_keys(engine: Engine) -> None:
    runtime = ServiceRuntime(settings=_settings("collector-north"), engine=engine)
    for i, hours in enumerate([-25.0, -1.0]):
        at = utcnow() + timedelta(hours=hours)
        job = JobRow(f"j{i}", "sleep", {}, None, None, "succeeded", "key1", "ops", "operator", at)
        assert insert_job(engine, job, [], Idempotency(f"k{i}", "key1", "fp")) is None
    await runtime.maintain()
    with engine.connect() as conn:
        assert list(conn.execute(select(IDEMPOTENCY.c.key)).scalars()) == ["k1"]
    # A day later the other one has expired too.
    await runtime.maintain(utcnow() + timedelta(hours=24))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(IDEMPOTENCY)).scalar_one() == 0


# ---- migration 0010 -----------------------------------------------------------------------------------


def test_migration_0010_goes_down_and_up_again_and_older_jobs_count_as_stale(
    blank_db_url: str,  # noqa: F811
) -> None:
    from alembic import command

    from fleetmon.storage.engine import _alembic_config, current_revision, head_revision, upgrade

    engine = make_engine(blank_db_url)
    try:
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0010"
        _store(engine, _row("leased", "running", "collector-north", silent_s=1))
        command.downgrade(_alembic_config(engine), "0009")
        assert current_revision(engine) == "0009"
        with engine.connect() as conn:
            assert "owner" not in {c["name"] for c in inspect(conn).get_columns("action_jobs")}
        upgrade(engine)
        assert current_revision(engine) == "0010"
        job = _job(engine, "leased")  # kept, its lease gone: what 0009 stored has no owner
        assert (job.state, job.owner, job.heartbeat_at) == ("running", None, None)
        now = utcnow()
        ended = end_abandoned(engine, now, owner=None, stale_before=now - STALE, detail=lambda _: "stale")
        assert [j.id for j in ended] == ["leased"]
    finally:
        engine.dispose()
