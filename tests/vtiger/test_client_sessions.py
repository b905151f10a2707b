"""Sessions under concurrency, against the sandbox: logins take turns per user, re-login happens once, a pool
of sessions (one per concurrent caller) logs in and out slot by slot."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from waiting import HANG_GUARD

from connector.crm.vtiger.client import VtigerClient
from connector.crm.vtiger.session_pool import SessionPool
from connector.retry import RetryPolicy
from connector_sandboxes.vtiger import VtigerSandbox

from .conftest import WsClient

pytestmark = pytest.mark.e2e


def new_client(sandbox: VtigerSandbox, sessions: int = 1) -> VtigerClient:
    return VtigerClient(
        sandbox.url,
        sandbox.username,
        sandbox.access_key,
        policy=RetryPolicy(attempts=3, sleep=lambda s: None),
        sessions=sessions,
    )


def together(*calls: Callable[[], object]) -> list[BaseException]:
    """Run the calls in threads released at the same instant; return what they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=HANG_GUARD)
    # a thread still running would be judged half way (and keep calling the sandbox during the asserts)
    assert not any(t.is_alive() for t in threads), "a call hung"
    return errors


def test_two_clients_of_one_user_take_turns_at_logging_in(vt_sandbox: VtigerSandbox) -> None:
    # The source's and the writer's clients (or two targets) log in as the same user. A getchallenge replaces
    # that user's token, so interleaved logins would refuse each other.
    vt_sandbox.faults.latency = 0.05
    clients = [new_client(vt_sandbox) for _ in range(3)]
    errors = together(*(lambda c=c: c.call("listtypes") for c in clients))
    assert errors == []
    assert vt_sandbox.calls["getchallenge"] == 3 and vt_sandbox.calls["login"] == 3
    assert all(c.logins == 1 for c in clients)


def test_threads_hitting_an_expired_session_together_log_in_again_once(vt_sandbox: VtigerSandbox) -> None:
    client = new_client(vt_sandbox)
    client.call("listtypes")
    vt_sandbox.faults.latency = 0.02
    vt_sandbox.sessions.expire_all()
    vt_sandbox.reset_calls()
    errors = together(*(lambda: client.call("listtypes") for _ in range(8)))
    assert errors == []
    assert client.logins == 2
    assert vt_sandbox.calls["getchallenge"] == 1 and vt_sandbox.calls["login"] == 1


def _n_at_once(sandbox: VtigerSandbox, client: VtigerClient, n: int) -> None:
    """`n` concurrent listtypes, each held in the server until `n` sessions serve one: every one of the pool's
    slots is in use at once."""
    sandbox.reset_calls()
    sandbox.faults.release.clear()
    sandbox.faults.hold_ops = {"listtypes"}
    threads = [threading.Thread(target=client.call, args=("listtypes",), daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    try:
        reached = sandbox.in_flight.wait_until(lambda f: len(f.sessions_seen) == n, HANG_GUARD)
        assert reached, sandbox.in_flight.sessions_seen
    finally:
        sandbox.faults.hold_ops = set()
        sandbox.faults.release.set()
    for t in threads:
        t.join(timeout=HANG_GUARD)
    assert not any(t.is_alive() for t in threads), "a call hung"
    assert sandbox.calls["listtypes"] == n


def test_sequential_calls_keep_one_session_of_the_pool(vt_sandbox: VtigerSandbox) -> None:
    client = new_client(vt_sandbox, sessions=4)
    for _ in range(5):
        client.call("listtypes")
    assert client.logins == 1
    assert len(vt_sandbox.in_flight.sessions_seen) == 1


def test_concurrent_calls_get_a_session_each_up_to_the_pool_size(vt_sandbox: VtigerSandbox) -> None:
    client = new_client(vt_sandbox, sessions=3)
    _n_at_once(vt_sandbox, client, 3)
    assert client.logins == 3 and vt_sandbox.calls["login"] == 3
    assert vt_sandbox.in_flight.peak_total == 3 and vt_sandbox.in_flight.peak_per_session == 1
    # the pool is full: the sessions are reused, none is added
    _n_at_once(vt_sandbox, client, 3)
    assert client.logins == 3 and vt_sandbox.calls["login"] == 0


def test_each_session_logs_in_again_on_its_own(vt_sandbox: VtigerSandbox) -> None:
    client = new_client(vt_sandbox, sessions=2)
    _n_at_once(vt_sandbox, client, 2)
    assert client.logins == 2
    # every session now expires after 3 calls; sequential calls use the first session only, which has had one
    vt_sandbox.faults.expire_sessions_after = 3
    for _ in range(4):
        client.call("listtypes")
    assert client.logins == 3  # the first session was replaced once
    # both at once again: the second session (2 calls so far) still works, so no login
    _n_at_once(vt_sandbox, client, 2)
    assert client.logins == 3


def test_close_logs_out_every_session(vt_sandbox: VtigerSandbox) -> None:
    client = new_client(vt_sandbox, sessions=3)
    _n_at_once(vt_sandbox, client, 3)
    names = set(vt_sandbox.in_flight.sessions_seen)
    client.close()
    assert vt_sandbox.calls["logout"] == 3
    raw = WsClient(vt_sandbox)
    for name in names:
        answer = raw.call("GET", "listtypes", sessionName=name)
        assert answer["error"]["code"] == "INVALID_SESSIONID"


def test_close_on_stock_php8_tries_one_logout_and_gives_up_quietly(vt_sandbox: VtigerSandbox) -> None:
    client = new_client(vt_sandbox, sessions=3)
    _n_at_once(vt_sandbox, client, 3)
    vt_sandbox.faults.stock_php8()  # logout answers an empty HTTP 500
    client.close()
    assert vt_sandbox.calls["logout"] == 1


def test_close_leaves_a_session_serving_a_call_alone(vt_sandbox: VtigerSandbox) -> None:
    client = new_client(vt_sandbox, sessions=2)
    _n_at_once(vt_sandbox, client, 2)
    vt_sandbox.reset_calls()
    vt_sandbox.faults.release.clear()
    vt_sandbox.faults.arrived.clear()
    vt_sandbox.faults.hold_ops = {"listtypes"}
    busy = threading.Thread(target=client.call, args=("listtypes",), daemon=True)
    busy.start()
    try:
        assert vt_sandbox.faults.arrived.wait(timeout=HANG_GUARD), "the call never reached the server"
        # vtiger would hold a logout of the busy session until its call ends: only the idle one is logged out
        closing = threading.Thread(target=client.close, daemon=True)
        closing.start()
        closing.join(timeout=HANG_GUARD)
        assert not closing.is_alive(), "close waited for the call in flight"
        assert vt_sandbox.calls["logout"] == 1
    finally:
        vt_sandbox.faults.hold_ops = set()
        vt_sandbox.faults.release.set()
    busy.join(timeout=HANG_GUARD)
    assert not busy.is_alive()


def test_a_call_stopped_part_way_retires_its_session() -> None:
    pool = SessionPool(2)
    with pool.checkout() as slot:
        slot.name = "first"
    with pytest.raises(KeyboardInterrupt), pool.checkout() as stopped:
        assert stopped is slot  # the idle session is reused
        raise KeyboardInterrupt  # a stop while vtiger may still be serving the call under the session's lock
    with pool.checkout() as fresh:
        assert fresh is not slot and fresh.name is None  # never handed out again
    assert pool.take_idle() == []  # and never logged out (the logout would wait behind that call)


def test_an_error_answer_keeps_the_session_in_use() -> None:
    pool = SessionPool(2)
    with pytest.raises(ValueError), pool.checkout() as slot:
        slot.name = "first"
        raise ValueError("an answer that was an error")
    with pool.checkout() as again:
        assert again is slot
    assert pool.take_idle() == ["first"]
