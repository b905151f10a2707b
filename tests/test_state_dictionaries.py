"""The state's zstd dictionary codec (issue 10 item 2: state under 1 KB a person): rows of each kind compressed
with a dictionary trained on redacted rows and kept in the state (migration 11); zlib rows and plain text
written before stay readable; a codec change is never seen as a change of a person; no dictionary holds
anyone's own values."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spine_helpers import AS_OF, Project
from structlog.testing import capture_logs

from connector import state_dictionaries
from connector.pipeline import Runner
from connector.schema import Fact, FactKind, RecordRef
from connector.state import StateStore
from connector.state_codec import (
    decode_decision,
    decode_fact,
    decode_reason,
    decode_snapshot,
    encode_decision,
    encode_snapshot,
)
from connector.state_migrations import SCHEMA_VERSION

pytestmark = pytest.mark.reliability("State")

V10_STATE = Path(__file__).parent / "data" / "state-v10.sqlite"


@pytest.fixture
def few_samples() -> Iterator[None]:
    """Dictionaries trained after 3 rows of a kind, so a small project has them."""
    before = state_dictionaries.MIN_SAMPLES
    state_dictionaries.MIN_SAMPLES = 3
    try:
        yield
    finally:
        state_dictionaries.MIN_SAMPLES = before
