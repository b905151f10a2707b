"""Sessions under concurrency, against the sandbox: logins take turns per user, re-login happens once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from waiting import HANG_GUARD

from connector.crm.vtiger.client import VtigerClient
from connector.retry import RetryPolicy
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = pytest.mark.e2e


def new_client(sandbox: VtigerSandbox) -> VtigerClient:
    return VtigerClient(
        sandbox.url,
        sandbox.username,
        sandbox.access_key,
        policy=RetryPolicy(attempts=3, sleep=lambda s: None),
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
