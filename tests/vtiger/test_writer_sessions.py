"""The vtiger writer's parallel label writes gain from sessions, not from threads (issue 10 item 5).

vtiger serves one request at a time per session (the sandbox does too), so 4 worker threads sharing one
session get one revise served at a time, and only a pool of sessions, one per worker, gets 4 served at once.
Judged by the sandbox's in-flight counts while every worker's first revise is held inside the server, never
by wall-clock time.
"""

from __future__ import annotations

import threading

import pytest
from waiting import HANG_GUARD

from connector.plan import LabelChange
from connector.writers.base import WriteResult
from connector.writers.vtiger.writer import VtigerWriter
from connector_sandboxes.vtiger import VtigerSandbox

from .test_writer_sandbox import ctx, field, person, writer

pytestmark = pytest.mark.e2e
WORKERS = 4


def _labels_while_revises_are_held(sandbox: VtigerSandbox, out: VtigerWriter) -> tuple[int, int, int]:
    """Write 12 labels on `WORKERS` threads, holding every revise inside the server until the workers are all
    stuck in one; returns (requests in the server, being served, sessions serving) at that moment."""
    people = [person(sandbox, "Leads", n) for n in range(12)]
    out.label_field("Leads")  # describe first, so from here on every request carrying a session is a revise
    sandbox.reset_calls()
    sandbox.faults.hold_ops = {"revise"}
    changes = [LabelChange(p.person_key, p.refs[0], None, "Prospect") for p in people]
    results: list[WriteResult] = []
    thread = threading.Thread(target=lambda: results.append(out.write_labels(changes, ctx())), daemon=True)
    thread.start()
    flight = sandbox.in_flight
    try:
        # every worker is blocked in a held revise once WORKERS revises are in the server and either each has a
        # session of its own or some wait for a shared session's lock
        reached = flight.wait_until(
            lambda f: (
                f.now_arrived == WORKERS and (len(f.sessions_seen) == WORKERS or f.now_served < f.now_arrived)
            ),
            HANG_GUARD,
        )
        assert reached, (flight.now_arrived, flight.now_served, len(flight.sessions_seen))
        seen = (flight.now_arrived, flight.now_served, len(flight.sessions_seen))
    finally:
        sandbox.faults.hold_ops = set()
        sandbox.faults.release.set()
    thread.join(timeout=HANG_GUARD)
    assert not thread.is_alive(), "the label writes hung"
    assert results and results[0].failed == {}
    assert sandbox.calls["revise"] == 12
    assert all(field(sandbox, p.refs[0], "Funnel stage") == "Prospect" for p in people)
    assert flight.peak_per_session == 1  # the sandbox never served two requests of one session at once
    return seen


def test_a_pool_of_sessions_gets_every_worker_served_at_once(vt_sandbox: VtigerSandbox) -> None:
    out = writer(vt_sandbox, concurrency=WORKERS)
    arrived, served, sessions = _labels_while_revises_are_held(vt_sandbox, out)
    assert (arrived, served, sessions) == (WORKERS, WORKERS, WORKERS)
    assert vt_sandbox.in_flight.peak_total == WORKERS
    assert out.client.logins == WORKERS  # one login per worker (the describe's session is one of them)


def test_threads_sharing_one_session_are_served_one_at_a_time(vt_sandbox: VtigerSandbox) -> None:
    out = writer(vt_sandbox, concurrency=WORKERS)
    out.client.sessions.pin(1)  # the old way: every worker on the one session
    arrived, served, sessions = _labels_while_revises_are_held(vt_sandbox, out)
    # the four threads' revises all reached vtiger, but it served one while three waited for the session
    assert (arrived, served, sessions) == (WORKERS, 1, 1)
    assert vt_sandbox.in_flight.peak_total == 1
    assert vt_sandbox.in_flight.peak_arrived == WORKERS
    assert out.client.logins == 1
