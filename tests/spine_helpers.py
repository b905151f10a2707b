"""Helpers for the spine's tests: people and stage engines built directly, and a small files-only project.

A module of its own (not conftest.py): tests/salesforce has a conftest.py too, and `import conftest` would pick
whichever was imported first.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.config import AppConfigBase, load_config
from connector.engine import StageEngine
from connector.schema import Person
from connector.stage_model import StageModel, load_preset

AS_OF = dt.date(2026, 11, 23)


def days(n: int) -> dt.date:
    """A date `n` days from the tests' as-of date."""
    return AS_OF + dt.timedelta(days=n)


def make_person(key: str = "P1", **values: Any) -> Person:
    return Person(key=key, values=dict(values))


def preset_model(name: str, **overrides: Any) -> StageModel:
    data = load_preset(name)
    data.update(overrides)
    return StageModel.model_validate(data)


def preset_engine(name: str, **overrides: Any) -> StageEngine:
    return StageEngine(preset_model(name, **overrides))


# ---- a small files-only project ------------------------------------------------------------------------

PEOPLE_CSV = """\
email;first_name;last_name;company;status;opt_out;external_id
ann@acme.example;Ann;de Vries;Acme;Working;nee;EXT-1
bob@globex.example;Bob;Jansen;Globex;Qualified;nee;EXT-2
carla@initech.example;Carla;Smit;Initech;Disqualified;nee;EXT-3
dirk@umbrella.example;Dirk;Bakker;Umbrella;Working;ja;EXT-4
"""

CONTRACTS_CSV = """\
E-mail;Provider;Einddatum
bob@globex.example;TeleCorp;15-02-2027
frank@newco.example;TeleCorp;01-03-2027
"""

VISITS_JSONL = """\
{"email": "ann@acme.example", "visits": 5, "last": "2026-11-20"}
{"email": "eva@hooli.example", "visits": 1, "last": "2026-10-01"}
"""

CONFIG_YAML = """\
state:
  path: state/state.sqlite
stage_model:
  preset: default
sources:
  - name: crm
    type: file
    role: sales
    path: data/people.csv
    kind: person
    fields:
      email: email
      first_name: first_name
      last_name: last_name
      company: company
      status: lead_status
      opt_out: opted_out
      external_id: external_id
    value_maps:
      lead_status: {New: new, Working: working, Qualified: qualified, Disqualified: qualified_out, Nurture: nurture}
  - name: contracts
    type: file
    path: data/contracts.csv
    kind: contract
    join: email
    fields: {E-mail: email, Provider: competitor, Einddatum: contract_end}
    date_formats: ["%d-%m-%Y"]
  - name: visits
    type: file
    path: data/visits.jsonl
    kind: enrichment
    join: email
    fields: {email: email, visits: web_visits, last: last_visit}
targets:
  - name: files
    type: segment_files
    directory: out
segments:
  - name: acquisition
    when: {field: competitor_contract_end, within_days: {from: 0, to: 180}}
    targets: [files]
  - name: warm
    when: {field: stage, in: [lead, prospect]}
    targets: [files]
"""


@dataclass
class Project:
    """A config with three file sources and one segment_files target, all inside `root`."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "connector.yaml"

    @property
    def state_path(self) -> Path:
        return self.root / "state" / "state.sqlite"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def config(self) -> AppConfigBase:
        return load_config(self.config_path)

    def segment_files(self) -> dict[str, bytes]:
        if not self.out.exists():
            return {}
        return {p.name: p.read_bytes() for p in sorted(self.out.iterdir())}

    def segment_rows(self, segment: str) -> list[str]:
        """E-mails listed in a segment file (first column), in file order."""
        text = (self.out / f"{segment}.csv").read_text(encoding="utf-8-sig")
        return [line.split(";", 1)[0] for line in text.splitlines()[1:] if line]

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the state database with a fresh connection (what another process would see)."""
        if not self.state_path.exists():
            return []
        db = sqlite3.connect(str(self.state_path))
        try:
            return [tuple(r) for r in db.execute(sql, args)]
        finally:
            db.close()


# a vtiger-only project that labels leads (format with url=...)
VTIGER_LABEL_CONFIG = """\
state: {{path: state.sqlite}}
stage_model: {{preset: default}}
sources:
  - name: vt_main
    type: vtiger
    url: {url}
    modules:
      Leads: {{fields: {{email: email, lastname: last_name, leadstatus: lead_status}}}}
targets:
  - name: vt_out
    type: vtiger
    source: vt_main
    label_field: {{Leads: "label:Funnel stage"}}
"""
