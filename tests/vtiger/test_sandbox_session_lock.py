"""One session serves one request at a time, as vtiger's locked PHP session file does; sessions run in parallel.

Judged by the sandbox's in-flight counters (requests being served at once, in total and per session), never by
wall-clock time: held calls (`faults.hold_ops`) keep requests inside the server until the counts are read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from waiting import HANG_GUARD

from connector_sandboxes.vtiger import VtigerSandbox

from .conftest import WsClient

pytestmark = pytest.mark.e2e


def _in_threads(calls: list[Callable[[], object]]) -> tuple[list[threading.Thread], list[BaseException]]:
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in calls]
    for t in threads:
        t.start()
    return threads, errors


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(timeout=HANG_GUARD)
    assert not any(t.is_alive() for t in threads), "a call hung"


def _logged_in(sandbox: VtigerSandbox, session: str) -> WsClient:
    """A client of its own (its own HTTP connection) that speaks with an existing session."""
    client = WsClient(sandbox)
    client.session_name = session
    return client


def test_requests_of_one_session_queue_while_other_sessions_are_served(vt_sandbox: VtigerSandbox) -> None:
    first, second = WsClient(vt_sandbox).login(), WsClient(vt_sandbox).login()
    vt_sandbox.reset_calls()
    vt_sandbox.faults.hold_ops = {"listtypes"}
    calls = [
        lambda s=session: _logged_in(vt_sandbox, s).get("listtypes")
        for session in (first, first, first, second, second, second)
    ]
    threads, errors = _in_threads(calls)
    try:
        # all six are inside the server; one per session is being served (and held), the rest wait their turn
        reached = vt_sandbox.in_flight.wait_until(
            lambda f: f.now_arrived == 6 and f.now_served == 2, HANG_GUARD
        )
        assert reached, (vt_sandbox.in_flight.now_arrived, vt_sandbox.in_flight.now_served)
    finally:
        vt_sandbox.faults.hold_ops = set()
        vt_sandbox.faults.release.set()
    _join(threads)
    assert errors == []
    assert vt_sandbox.calls["listtypes"] == 6
    assert vt_sandbox.in_flight.peak_per_session == 1
    assert vt_sandbox.in_flight.peak_total == 2
    assert vt_sandbox.in_flight.sessions_seen == {first, second}


def test_with_latency_each_session_serves_one_request_at_a_time(vt_sandbox: VtigerSandbox) -> None:
    sessions = [WsClient(vt_sandbox).login() for _ in range(3)]
    vt_sandbox.reset_calls()
    vt_sandbox.faults.latency = 0.02
    barrier = threading.Barrier(12)

    def worker(session: str) -> None:
        client = _logged_in(vt_sandbox, session)
        barrier.wait(timeout=HANG_GUARD)
        for _ in range(3):
            client.get("listtypes")

    threads, errors = _in_threads([lambda s=s: worker(s) for s in sessions for _ in range(4)])
    _join(threads)
    assert errors == []
    assert vt_sandbox.calls["listtypes"] == 36
    # four threads per session never got two of its requests served at once; at most one per session ran
    assert vt_sandbox.in_flight.peak_per_session == 1
    assert 1 <= vt_sandbox.in_flight.peak_total <= 3
    assert vt_sandbox.in_flight.sessions_seen == set(sessions)


def test_getchallenge_and_login_are_not_serialised(vt_sandbox: VtigerSandbox) -> None:
    vt_sandbox.faults.hold_ops = {"getchallenge"}
    calls = [lambda: WsClient(vt_sandbox).get("getchallenge", username="admin") for _ in range(3)]
    threads, errors = _in_threads(calls)
    try:
        reached = vt_sandbox.in_flight.wait_until(lambda f: f.now_served == 3, HANG_GUARD)
        assert reached, vt_sandbox.in_flight.now_served
    finally:
        vt_sandbox.faults.hold_ops = set()
        vt_sandbox.faults.release.set()
    _join(threads)
    assert errors == []
    assert vt_sandbox.in_flight.peak_total == 3
    assert vt_sandbox.in_flight.peak_per_session == 0  # they carry no session


def test_a_session_logged_out_or_unknown_fails_at_once_without_waiting(vt_sandbox: VtigerSandbox) -> None:
    client = WsClient(vt_sandbox)
    session = client.login()
    vt_sandbox.faults.hold_ops = {"listtypes"}
    threads, errors = _in_threads([lambda: _logged_in(vt_sandbox, session).get("listtypes")])
    try:
        assert vt_sandbox.in_flight.wait_until(lambda f: f.now_served == 1, HANG_GUARD)
        # a made-up session name is refused while the real session is busy: no lock to wait for
        refused = WsClient(vt_sandbox).call(
            "GET", "describe", elementType="Leads", sessionName="nosuchsession"
        )
        assert refused["error"]["code"] == "INVALID_SESSIONID"
    finally:
        vt_sandbox.faults.hold_ops = set()
        vt_sandbox.faults.release.set()
    _join(threads)
    assert errors == []
