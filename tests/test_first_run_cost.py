"""Issue 10, a first run's CPU: work a first run did more than once, each shown gone here. The run's figures
themselves are measured with benchmarks/run.py, never asserted; these tests hold the shape of the work (how
often a thing is built, walked or described) and that the output is the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector import state_codec
from connector.state import StateStore
from connector.state_codec import decode_decision, decode_snapshot


def _snapshot(i: int) -> dict[str, Any]:
    email = f"pérson{i}@bench.example"  # a non-ASCII value: escaped as json.dumps escapes it
    return {
        "refs": [f"crm:people.csv:{email}"],
        "values": {"email": email, "first_name": f"F{i}", "score": i / 3, "tags": ["a", "b"]},
        "extra": {"note": None},
        "provenance": {"email": f"crm:people.csv:{email}", "competitor": f"contracts:c.csv:{email}"},
    }


def test_rows_are_encoded_without_building_a_json_encoder_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # json.dumps with options builds a JSONEncoder per call: as costly as encoding a few hundred bytes
    built = 0
    original = json.JSONEncoder.__init__

    def counting(self: json.JSONEncoder, *args: Any, **kwargs: Any) -> None:
        nonlocal built
        built += 1
        original(self, *args, **kwargs)

    store = StateStore(tmp_path / "state.sqlite")
    monkeypatch.setattr(json.JSONEncoder, "__init__", counting)
    blobs = [(store.codec.encode_snapshot(_snapshot(i)), i) for i in range(50)]
    decisions = [store.codec.encode_decision({"stage": "lead", "matched": [f"x={i}"]}) for i in range(50)]
    monkeypatch.undo()
    assert built == 0
    # the same text as before: sorted keys, compact, non-ASCII escaped (stored rows compare by their bytes)
    for blob, i in blobs:
        assert decode_snapshot(blob) == _snapshot(i)
    assert decode_decision(decisions[7])["matched"] == ["x=7"]
    text = state_codec._text(_snapshot(1))
    assert text == json.dumps(_snapshot(1), sort_keys=True, separators=(",", ":"), default=str).encode()
