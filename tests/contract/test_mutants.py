"""The contract suite can fail: every check, run against a plugin broken on purpose (mutants.py), fails.

Each case pairs a harness with a double that breaks the clause one check guards; the real plugin passes that
same check in test_source_contract.py / test_writer_contract.py. Only pairs where the clause applies are
listed (a file source cannot be unreachable, a segment file cannot fail one member alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from connector.retry import RetryPolicy
from connector.sources.base import Source
from connector.writers.base import Writer

from . import mutants
from . import source_checks as sc
from . import writer_checks as wc
from .harnesses import SOURCE_HARNESSES, WRITER_HARNESSES, SourceHarness, WriterHarness

pytestmark = pytest.mark.e2e

SourceCheck = Callable[[SourceHarness, sc.MakeSource, Path], None]
WriterCheck = Callable[[WriterHarness, wc.MakeWriter], None]


def always(kind: type) -> bool:
    return True


def reachable(kind: type[SourceHarness]) -> bool:
    return kind.never_unreachable is None


def labels(kind: type[WriterHarness]) -> bool:
    return kind.label_object is not None


def fails_alone(kind: type[WriterHarness]) -> bool:
    return kind.never_fails_alone is None


@dataclass(frozen=True)
class SourceMutant:
    id: str
    match: str  # what the failing check must say: the mutant is caught by its own clause, not by chance
    check: SourceCheck
    double: Callable[[Source], Source] | None = None  # wraps the real source; None: `policy` below
    policy: Callable[[RetryPolicy], RetryPolicy] | None = None  # builds the real source with another policy
    applies: Callable[[type[SourceHarness]], bool] = always

    def make(self, h: SourceHarness) -> sc.MakeSource:
        double, policy = self.double, self.policy
        if double is not None:
            return lambda p: double(h.build(p))
        assert policy is not None
        return lambda p: h.build(policy(p))


@dataclass(frozen=True)
class WriterMutant:
    id: str
    match: str
    check: WriterCheck
    double: Callable[[Writer], Writer]
    applies: Callable[[type[WriterHarness]], bool] = always

    def make(self, h: WriterHarness) -> wc.MakeWriter:
        return lambda p: self.double(h.build(p))


def no_dir(check: Callable[[SourceHarness, sc.MakeSource], None]) -> SourceCheck:
    return lambda h, make, _: check(h, make)


SOURCE_MUTANTS = [
    SourceMutant("drops-page-ends", "first read:", no_dir(sc.check_first_read), mutants.DropsPageEnds),
    SourceMutant(
        "forgets-rereads",
        "cursor instant was lost",
        no_dir(sc.check_incremental_overlap),
        mutants.ForgetsRereads,
    ),
    SourceMutant(
        "ignores-cursors", "read again", no_dir(sc.check_incremental_overlap), mutants.IgnoresCursors
    ),
    SourceMutant("hides-deletions", "not reported", no_dir(sc.check_deletions), mutants.HidesDeletions),
    SourceMutant("drops-bad-records", "not kept in state", sc.check_rejects_kept, mutants.DropsBadRecords),
    SourceMutant(
        "config-error-when-down",
        "as a config error",
        no_dir(sc.check_unreachable),
        mutants.ConfigErrorWhenDown,
        applies=reachable,
    ),
    SourceMutant(
        "crashes-when-down",
        "crashed the read",
        no_dir(sc.check_unreachable),
        mutants.CrashesWhenDown,
        applies=reachable,
    ),
    SourceMutant(
        "gives-up-at-once",
        "attempts were not spent",
        no_dir(sc.check_unreachable),
        policy=lambda p: RetryPolicy(attempts=1, sleep=p.sleep),
        applies=reachable,
    ),
]

WRITER_MUTANTS = [
    WriterMutant(
        "labels-written-twice",
        "the system counted",
        wc.check_labels_land,
        mutants.WritesTwice,
        applies=labels,
    ),
    WriterMutant(
        "ignores-removes",
        "after removing one member",
        wc.check_segment_adds_and_removes,
        mutants.IgnoresRemoves,
    ),
    WriterMutant(
        "reports-failures-as-written",
        "failed: \\[\\]",
        wc.check_one_failure_fails_alone,
        mutants.ReportsFailuresAsWritten,
        fails_alone,
    ),
    WriterMutant(
        "hides-a-label-outage",
        "reported failed|the outage failed nothing",
        wc.check_outage_mid_labels,
        mutants.ReportsFailuresAsWritten,
        applies=labels,
    ),
    WriterMutant(
        "hides-a-segment-outage",
        "reported failed|the outage failed nothing",
        wc.check_outage_mid_segment,
        mutants.ReportsFailuresAsWritten,
    ),
    WriterMutant(
        "drops-segments-from-the-plan",
        "members not landed",
        wc.check_plan_handed_first,
        mutants.DropsSegmentsFromThePlan,
    ),
    WriterMutant(
        "loses-labels-on-outage",
        "UnreachableError after",
        wc.check_outage_mid_labels,
        mutants.LosesWritesOnOutage,
        applies=labels,
    ),
    WriterMutant(
        "loses-members-on-outage",
        "UnreachableError after",
        wc.check_outage_mid_segment,
        mutants.LosesWritesOnOutage,
        applies=fails_alone,  # a segment file is one write: an outage leaves nothing written to lose
    ),
]


@pytest.mark.parametrize(
    ("kind", "mutant"),
    [
        pytest.param(kind, m, id=f"{kind.id}-{m.id}")
        for kind in SOURCE_HARNESSES
        for m in SOURCE_MUTANTS
        if m.applies(kind)
    ],
)
def test_the_source_contract_catches(kind: type[SourceHarness], mutant: SourceMutant, tmp_path: Path) -> None:
    with kind() as h, pytest.raises(AssertionError, match=mutant.match):
        mutant.check(h, mutant.make(h), tmp_path)


@pytest.mark.parametrize(
    ("kind", "mutant"),
    [
        pytest.param(kind, m, id=f"{kind.id}-{m.id}")
        for kind in WRITER_HARNESSES
        for m in WRITER_MUTANTS
        if m.applies(kind)
    ],
)
def test_the_writer_contract_catches(kind: type[WriterHarness], mutant: WriterMutant) -> None:
    with kind() as h, pytest.raises(AssertionError, match=mutant.match):
        mutant.check(h, mutant.make(h))
