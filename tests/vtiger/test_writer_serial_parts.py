"""What of a parallel vtiger write still goes one at a time, and only that (issue 10 item 5).

Logins take turns (a challenge token is per user: that is vtiger's), but nothing else waits for them: a worker
with a session of its own writes on while another logs in, and the workers' logins run while the first
describe is in the server. The current values of the records to revise are read on several sessions at once.
Judged by what the sandbox sees while a call is held inside it, never by wall-clock time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from waiting import HANG_GUARD

from connector.plan import LabelChange
from connector.schema import RecordRef
from connector.writers.vtiger.writer import VtigerWriter
from connector_sandboxes.vtiger import VtigerSandbox

from .test_writer_sandbox import ctx, field, person, writer

pytestmark = pytest.mark.e2e


def _while_held(
    sandbox: VtigerSandbox, operation: str, work: Callable[[], object], ready: Callable[[], bool]
) -> bool:
    """Run `work` on a thread with every `operation` call held inside the sandbox; whether `ready` came true
    while one was held. Released and joined either way."""
    sandbox.faults.arrived.clear()
    sandbox.faults.release.clear()
    sandbox.faults.hold_ops = {operation}
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the test below
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        held = sandbox.in_flight.wait_until(lambda _: sandbox.faults.arrived.is_set(), HANG_GUARD)
        reached = held and sandbox.in_flight.wait_until(lambda _: ready(), HANG_GUARD)
    finally:
        sandbox.faults.hold_ops = set()
        sandbox.faults.release.set()
    thread.join(timeout=HANG_GUARD)
    assert not thread.is_alive(), f"{operation} held: the work hung"
    assert not failures, failures
    return reached


def _labels(sandbox: VtigerSandbox, records: int) -> tuple[list[LabelChange], list[RecordRef]]:
    people = [person(sandbox, "Leads", n) for n in range(records)]
    refs = [p.refs[0] for p in people]
    return [LabelChange(p.person_key, p.refs[0], None, "Prospect") for p in people], refs


def test_a_worker_with_a_session_writes_on_while_another_logs_in(vt_sandbox: VtigerSandbox) -> None:
    changes, refs = _labels(vt_sandbox, 12)
    out = writer(vt_sandbox, concurrency=2)
    out.label_field("Leads")  # one session open (login and describe): the second one's login is held below
    vt_sandbox.reset_calls()
    # the worker holding the first session writes every record but the one the other worker waits with
    assert _while_held(
        vt_sandbox,
        "login",
        lambda: out.write_labels(changes, ctx()),
        lambda: vt_sandbox.calls["revise"] >= len(refs) - 1,
    ), dict(vt_sandbox.calls)
    assert vt_sandbox.calls["revise"] == len(refs) and vt_sandbox.calls["login"] == 1
    assert all(field(vt_sandbox, ref, "Funnel stage") == "Prospect" for ref in refs)


def test_the_workers_log_in_while_the_first_describe_is_served(vt_sandbox: VtigerSandbox) -> None:
    changes, refs = _labels(vt_sandbox, 12)
    out = writer(vt_sandbox, concurrency=4)
    assert _while_held(
        vt_sandbox,
        "describe",
        lambda: out.write_labels(changes, ctx()),
        lambda: vt_sandbox.calls["login"] == 4,
    ), dict(vt_sandbox.calls)
    # one session per worker and no more, each logged in once
    assert vt_sandbox.calls["login"] == 4 and out.client.sessions.opened == 4
    assert vt_sandbox.calls["revise"] == len(refs)
    assert all(field(vt_sandbox, ref, "Funnel stage") == "Prospect" for ref in refs)


def test_few_labels_open_no_more_sessions_than_records(vt_sandbox: VtigerSandbox) -> None:
    changes, _ = _labels(vt_sandbox, 2)
    out = writer(vt_sandbox, concurrency=4)
    vt_sandbox.reset_calls()
    assert out.write_labels(changes, ctx()).failed == {}
    assert vt_sandbox.calls["login"] == 2 and vt_sandbox.calls["revise"] == 2


def test_current_values_are_read_on_several_sessions_at_once(vt_sandbox: VtigerSandbox) -> None:
    _, refs = _labels(vt_sandbox, 250)  # three queries of 100 ids
    out: VtigerWriter = writer(vt_sandbox, concurrency=4)
    out.segment_field("Leads")  # describe first: from here on the only calls with a session are the reads
    missing: list[set[RecordRef]] = []
    assert _while_held(
        vt_sandbox,
        "query",
        lambda: missing.append(out._load_values(refs)),
        lambda: vt_sandbox.in_flight.now_arrived == 3,
    )
    assert missing == [set()]
    assert vt_sandbox.calls["query"] == 3 and vt_sandbox.in_flight.peak_per_session == 1
    assert all(ref in out._values for ref in refs)
