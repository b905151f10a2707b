"""An opt-out, refused consent or a sales suppression on any one of a person's records keeps them out of
segments, even when resolution picks another record's newer or preferred value for the stage."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connector.config import load_config
from connector.pipeline import Runner

pytestmark = pytest.mark.reliability("Guards against wrong writes")

AS_OF = dt.date(2026, 11, 23)
CONFIG = """\
state: {path: state.sqlite}
stage_model: {preset: default}
identity: {merge_on: [email], source_priority: [crm_b, crm_a]}
sources:
  - name: crm_a
    type: file
    role: sales
    path: a.csv
    kind: person
    fields: {email: email, status: lead_status, consent: consent}
    value_maps: {lead_status: {Working: working, Disqualified: qualified_out}}
  - name: crm_b
    type: file
    role: sales
    path: b.csv
    kind: person
    fields: {email: email, status: lead_status, consent: consent}
    value_maps: {lead_status: {Working: working, Disqualified: qualified_out}}
targets:
  - {name: files, type: segment_files, directory: out}
segments:
  - name: warm
    when: {field: stage, eq: lead}
    targets: [files]
  - name: everyone
    when: {field: email, present: true}
    include_suppressed: true
    targets: [files]
"""


def _rows(root: Path, segment: str) -> set[str]:
    text = (root / "out" / f"{segment}.csv").read_text(encoding="utf-8-sig")
    return {line.split(";", 1)[0] for line in text.splitlines()[1:] if line}


def test_one_record_saying_no_keeps_the_person_out(tmp_path: Path) -> None:
    (tmp_path / "connector.yaml").write_text(CONFIG, encoding="utf-8")
    # crm_b is preferred by source_priority, so it decides the stage: Working (lead) for all three
    (tmp_path / "a.csv").write_text(
        "email;status;consent\n"
        "dis@x.nl;Disqualified;true\n"
        "refused@x.nl;Working;false\n"
        "fine@x.nl;Working;true\n",
        encoding="utf-8",
    )
    (tmp_path / "b.csv").write_text(
        "email;status;consent\ndis@x.nl;Working;true\nrefused@x.nl;Working;true\nfine@x.nl;Working;true\n",
        encoding="utf-8",
    )
    summary = Runner(load_config(tmp_path / "connector.yaml")).execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.stages["lead"] == 3  # the stage follows the preferred record
    assert _rows(tmp_path, "warm") == {"fine@x.nl"}
    # a segment that asks for suppressed people gets the qualified-out one, never the one who refused
    assert _rows(tmp_path, "everyone") == {"fine@x.nl", "dis@x.nl"}
