"""`connector explain` and `plan --full` speak to people: names and e-mails, plain sentences, no Python notation."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result
from spine_helpers import AS_OF, PEOPLE_CSV, VTIGER_LABEL_CONFIG, Project

from connector.cli import cli
from connector.explain import condition_text, explain_lines, show
from connector_sandboxes.vtiger import VtigerSandbox

PYTHON_NOTATION = re.compile(r"[{}\[\]]|'\w+':|\bTrue\b|\bFalse\b|\bNone\b")


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def invoke(project: Project, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--log-level", "warning", args[0], "-c", str(project.config_path), *args[1:]],
        catch_exceptions=False,
    )


def test_explain_names_the_person_and_says_what_decided_the_stage(project: Project) -> None:
    invoke(project, "run", "--as-of", AS_OF.isoformat())
    result = invoke(project, "explain", "bob@globex.example")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Bob Jansen <bob@globex.example> (person P")
    assert lines[1] == "Stage: Prospect (prospect), since 2026-11-23."
    assert 'Decided by rule "qualified", which proposes Prospect (prospect)' in lines[2]
    assert "    lead_status is qualified (the rule asks: lead_status is one of qualified, converted)" in lines
    assert "  competitor: TeleCorp   from contracts:data/contracts.csv:bob@globex.example" in lines
    assert "  opted_out: no   from crm:data/people.csv:bob@globex.example" in lines
    assert "  sources: contracts, crm" in lines
    assert "  2026-11-23: new -> prospect (rule qualified)" in lines
    assert lines[-4:] == [
        "Labels written:",
        "  files: none written",
        "Segments:",
        "  files: acquisition, warm",
    ]
    assert not PYTHON_NOTATION.search(result.stdout), result.stdout


def test_explain_says_when_the_forward_only_policy_held_the_stage(project: Project) -> None:
    invoke(project, "run", "--as-of", AS_OF.isoformat())
    # sales moves Bob back to "Working": the funnel only goes forward, so he stays a prospect
    project.write("data/people.csv", PEOPLE_CSV.replace("Globex;Qualified", "Globex;Working"))
    later = (AS_OF + dt.timedelta(days=1)).isoformat()
    invoke(project, "run", "--as-of", later)
    lines = invoke(project, "explain", "bob@globex.example").stdout.splitlines()
    assert lines[1] == "Stage: Prospect (prospect), since 2026-11-23."
    # the competitor's contract ending soon now decides (Bob is no longer qualified), and it proposes a step back
    assert lines[2].startswith('Decided by rule "competitor-contract-ending", which proposes Lead (lead): ')
    assert any(
        line.startswith("Held at Prospect (prospect): the stage only moves forward along the funnel")
        for line in lines
    ), lines


def test_explain_says_when_no_rule_held(project: Project) -> None:
    invoke(project, "run", "--as-of", AS_OF.isoformat())
    result = invoke(project, "explain", "eva@hooli.example")  # known only from web visits
    assert "No rule held, so the default stage applies: Suspect (suspect)." in result.stdout.splitlines()
    assert "Segments:\n  files: in no segment\n" in result.stdout


def test_labels_on_crm_records_are_named_with_their_records() -> None:
    out = {
        "person": "P1",
        "stage": "customer",
        "since": "2026-11-01",
        "decision": {"rule": None, "proposed": "customer", "matched": [], "held": False, "reentry": False},
        "records": ["sf_prod:Contact:003A", "vt_main:Contacts:12x7"],
        "values": {
            "email": "ann@acme.example",
            "won_date": {"$date": "2026-10-01"},
            "opportunity_amount": 1200.0,
        },
        "provenance": {"won_date": "sf_prod:Opportunity:006B"},
        "history": [],
        "labels": {"sf_out": {"sf_prod:Contact:003A": "Klant"}, "vt_out": {"vt_main:Contacts:12x7": "Klant"}},
        "segments": {"sf_out": ["Win back"], "vt_out": []},
    }
    lines = explain_lines(out)
    assert lines[0] == "ann@acme.example (person P1)"
    assert '  sf_out: "Klant" on sf_prod:Contact:003A' in lines
    assert "  won_date: 2026-10-01   from sf_prod:Opportunity:006B" in lines
    assert "  opportunity_amount: 1200" in lines
    assert lines[-2:] == ["  sf_out: Win back", "  vt_out: in no segment"]


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("lead_status == 'working'", "lead_status is working"),
        ("stage not in ['lost', 'qualified_out']", "stage is none of lost, qualified_out"),
        ("contract_end within today-30..today+0", "contract_end lies between 30 days ago and today"),
        ("not(opted_out == True)", "not (opted_out is yes)"),
        ("web_visits >= 3", "web_visits >= 3"),
    ],
)
def test_conditions_read_as_text(written: str, said: str) -> None:
    assert condition_text(written) == said


def test_values_read_as_text() -> None:
    assert show(True) == "yes"
    assert show(["crm", "files"]) == "crm, files"
    assert show({"$date": "2026-11-23"}) == "2026-11-23"
    assert show(dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)) == "2026-11-23 09:30 UTC"
    assert show(None) == "(empty)"


# ---- plan --full ------------------------------------------------------------------------------------------


def test_plan_full_names_segment_members_by_name_and_e_mail(project: Project) -> None:
    result = invoke(project, "plan", "--as-of", AS_OF.isoformat(), "--full")
    assert result.exit_code == 0, result.output
    warm = result.stdout.split("segment files/warm:", 1)[1].splitlines()
    assert "      add Ann de Vries <ann@acme.example>" in warm
    assert "      add Bob Jansen <bob@globex.example>" in warm


@pytest.mark.e2e
def test_plan_full_names_the_person_behind_each_label_change(
    vt_sandbox: VtigerSandbox, tmp_path: Path
) -> None:
    lead = vt_sandbox.store.create(
        "Leads", {"lastname": "de Vries", "email": "ann@acme.example", "leadstatus": "Hot"}
    )
    config = tmp_path / "connector.yaml"
    config.write_text(VTIGER_LABEL_CONFIG.format(url=vt_sandbox.url), encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["--log-level", "warning", "plan", "-c", str(config), "--as-of", AS_OF.isoformat(), "--full"],
        env=vt_sandbox.env(),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"      de Vries <ann@acme.example>  vt_main:Leads:{lead['id']}" in result.stdout.splitlines()
    data = json.loads(
        CliRunner()
        .invoke(
            cli,
            ["--log-level", "warning", "plan", "-c", str(config), "--as-of", AS_OF.isoformat(), "--json"],
            env=vt_sandbox.env(),
            catch_exceptions=False,
        )
        .stdout
    )
    (change,) = data["label_changes"]
    assert (change["email"], change["name"]) == ("ann@acme.example", "de Vries")
