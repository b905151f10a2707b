"""Fixtures of the plugin contract suite: one started harness per test, stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harnesses import SOURCE_HARNESSES, WRITER_HARNESSES, SourceHarness, WriterHarness


@pytest.fixture(params=SOURCE_HARNESSES, ids=lambda kind: kind.id)
def source_harness(request: pytest.FixtureRequest) -> Iterator[SourceHarness]:
    with request.param() as harness:
        yield harness


@pytest.fixture(params=WRITER_HARNESSES, ids=lambda kind: kind.id)
def writer_harness(request: pytest.FixtureRequest) -> Iterator[WriterHarness]:
    with request.param() as harness:
        yield harness
