"""Segment exports end to end: the diff step hands the writer each member's schema values, so a segment file's
`columns:` can show any field (dates typed), also for a member who left because their last record is gone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import load_workbook
from spine_helpers import AS_OF, CONFIG_YAML, CONTRACTS_CSV, PEOPLE_CSV, VISITS_JSONL, Project

from connector.pipeline import EXIT_OK, Runner

RUN_AT = dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)  # the change log's date is the run's start (UTC)
COLUMNS = "[email, company, competitor, competitor_contract_end, web_visits, stage, label]"


def exports_project(root: Path, file_format: str) -> Project:
    project = Project(root)
    project.write("data/people.csv", PEOPLE_CSV)
    project.write("data/contracts.csv", CONTRACTS_CSV)
    project.write("data/visits.jsonl", VISITS_JSONL)
    project.write(
        "connector.yaml",
        CONFIG_YAML.replace(
            "    directory: out\n",
            f"    directory: out\n    format: {file_format}\n    columns: {COLUMNS}\n",
        ),
    )
    return project


def test_csv_columns_show_schema_values_of_members_and_of_people_who_left(tmp_path: Path) -> None:
    project = exports_project(tmp_path, "csv")
    first = Runner(project.config(), clock=lambda: RUN_AT).execute("run", AS_OF)
    assert first.exit_code == EXIT_OK
    text = (project.out / "acquisition.csv").read_text(encoding="utf-8-sig").splitlines()
    assert text == [
        "email;company;competitor;competitor_contract_end;web_visits;stage;label",
        "bob@globex.example;Globex;TeleCorp;2027-02-15;;prospect;Prospect",
        "frank@newco.example;;TeleCorp;2027-03-01;;lead;Lead",
    ]
    warm = (project.out / "warm.csv").read_text(encoding="utf-8-sig").splitlines()
    assert warm[1] == "ann@acme.example;Acme;;;5;lead;Lead"

    # frank's only record goes: his remove row is described from the state's last snapshot, date included
    project.write(
        "data/contracts.csv", CONTRACTS_CSV.replace("frank@newco.example;TeleCorp;01-03-2027\n", "")
    )
    second = Runner(project.config(), clock=lambda: RUN_AT).execute("run", AS_OF)
    changes = (project.out / "acquisition.changes.csv").read_text(encoding="utf-8-sig").splitlines()
    assert (
        changes[-1]
        == f"{AS_OF.isoformat()};{second.run_id};removed;frank@newco.example;;TeleCorp;2027-03-01;;lead;Lead"
    )


def test_xlsx_export_from_a_run(tmp_path: Path) -> None:
    project = exports_project(tmp_path, "xlsx")
    assert Runner(project.config(), clock=lambda: RUN_AT).execute("run", AS_OF).exit_code == EXIT_OK
    ws = load_workbook(project.out / "acquisition.xlsx").active
    assert [c.value for c in ws[1]] == COLUMNS.strip("[]").split(", ")
    bob = [c for c in ws[2]]
    assert bob[0].value == "bob@globex.example"
    assert bob[3].is_date and bob[3].value.date().isoformat() == "2027-02-15"
    assert sorted(p.name for p in project.out.iterdir()) == [
        "acquisition.changes.xlsx",
        "acquisition.xlsx",
        "warm.changes.xlsx",
        "warm.xlsx",
    ]
