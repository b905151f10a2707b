"""The Salesforce source's describe cache over real HTTPS: what a run asks the org when metadata is cached.

Each run builds a fresh source, as the run loop does; runs differ by their start (`RunContext.started_at`),
against which the cache measures the age of what it holds.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sf_fakes import add_field, delete_field
from structlog.testing import capture_logs

from connector.context import PluginEnv, RunContext
from connector.errors import ConfigError
from connector.retry import RetryPolicy
from connector.schema import Fact
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector.sources.salesforce.source import SalesforceSource
from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.salesforce.seed import seed_people

pytestmark = pytest.mark.e2e
HOUR = dt.timedelta(hours=1)
OBJECTS: dict[str, Any] = {
    "Lead": {"fields": {"Email": "email", "LastName": "last_name", "Status": "lead_status"}},
    "Contact": {"fields": {"Email": "email", "Account.Name": "company"}},
    "Opportunity": {"kind": "opportunity", "fields": {"StageName": "opportunity_stage_raw"}},
}
# Lead, Contact, Account (Contact's Account.Name), Opportunity, OpportunityContactRole, and the two picklist
# objects whose rows say what a status or stage means
DESCRIBED = {
    "Lead",
    "Contact",
    "Account",
    "Opportunity",
    "OpportunityContactRole",
    "LeadStatus",
    "OpportunityStage",
}


def make_source(sb: SalesforceSandbox, state_dir: Path, **overrides: Any) -> SalesforceSource:
    data: dict[str, Any] = {
        "name": "sf_prod",
        "type": "salesforce",
        "auth": "password",
        "login_url": sb.login_url,
        "ca_bundle": sb.ca_bundle,
        "objects": OBJECTS,
    }
    data.update(overrides)
    cfg = SalesforceSourceConfig.model_validate(data)
    env = PluginEnv(
        sources=[cfg],
        policy=RetryPolicy(attempts=4, sleep=lambda s: None),
        environ={
            "SF_USERNAME": sb.username,
            "SF_PASSWORD": sb.password,
            "SF_SECURITY_TOKEN": sb.security_token,
        },
        state_dir=state_dir,
    )
    return SalesforceSource.from_config(cfg, env)


def run(
    sb: SalesforceSandbox, state_dir: Path, described: list[str], at: dt.datetime, **overrides: Any
) -> tuple[SalesforceSource, list[Fact]]:
    """One run of a fresh source starting `at`, its records mapped as the run loop maps them; the sandbox and
    `described` hold only this run's calls."""
    sb.reset_calls()
    described.clear()
    src = make_source(sb, state_dir, **overrides)
    facts = []
    for batch in src.read({}, RunContext(as_of=at.date(), started_at=at)):
        facts.extend(src.map(batch.object, raw) for raw in batch.records)
    return src, facts


def start(sb: SalesforceSandbox) -> dt.datetime:
    """A run start after everything the test wrote (the sandbox stamps by the wall clock)."""
    return sb.store.now() + dt.timedelta(seconds=1)


def cache_file(state_dir: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((state_dir / "cache" / "salesforce-sf_prod-describe.json").read_text())
    return body


# -- a run within the TTL asks for nothing, a run after it asks again -----------------------------------------


def test_a_second_run_within_the_ttl_makes_no_describe_call(sf_sandbox, tmp_path, described) -> None:
    seed_people(sf_sandbox.store, 30)
    # the org's own status (in its LeadStatus rows, not converted, not one of Salesforce's stock ones)
    sf_sandbox.store.insert(
        "LeadStatus",
        {"MasterLabel": "Hibernating", "ApiName": "Hibernating", "IsConverted": False, "SortOrder": 9},
    )
    sf_sandbox.store.insert(
        "Lead", {"LastName": "H", "Company": "Acme", "Email": "h@x.nl", "Status": "Hibernating"}
    )
    t0 = start(sf_sandbox)
    first, facts = run(sf_sandbox, tmp_path, described, t0)
    assert facts and sorted(described) == sorted(DESCRIBED)
    assert sf_sandbox.call_counts()["describe"] == len(DESCRIBED)
    queries = sf_sandbox.call_counts()["query"]

    second, facts2 = run(sf_sandbox, tmp_path, described, t0 + 23 * HOUR)
    assert described == [] and sf_sandbox.call_counts()["describe"] == 0
    assert len(facts2) == len(facts)
    # the LeadStatus / OpportunityStage rows came from the cache too, and mean what they meant
    assert sf_sandbox.call_counts()["query"] == queries - 2
    assert second.meanings == first.meanings and second.meanings.opportunity
    # a status the YAML does not map and that is no stock one is in the cached rows (known, just not
    # converted): reported as before, without asking the org again for it
    assert first.unknown_values and second.unknown_values == first.unknown_values


def test_after_the_ttl_every_object_is_described_again(sf_sandbox, tmp_path, described) -> None:
    t0 = start(sf_sandbox)
    run(sf_sandbox, tmp_path, described, t0)
    queries = sf_sandbox.call_counts()["query"]
    run(sf_sandbox, tmp_path, described, t0 + 24 * HOUR)
    assert sorted(described) == sorted(DESCRIBED)
    assert sf_sandbox.call_counts()["describe"] == len(DESCRIBED)
    assert sf_sandbox.call_counts()["query"] == queries  # the picklist rows are read again as well
    run(sf_sandbox, tmp_path, described, t0 + 25 * HOUR)
    assert described == []  # ... and kept from then on


def test_the_ttl_is_the_source_s_setting_and_zero_switches_the_cache_off(
    sf_sandbox, tmp_path, described
) -> None:
    t0 = start(sf_sandbox)
    run(sf_sandbox, tmp_path, described, t0, describe_cache_hours=0.5)
    run(sf_sandbox, tmp_path, described, t0 + HOUR, describe_cache_hours=0.5)
    assert sorted(described) == sorted(DESCRIBED)

    off = tmp_path / "off"
    run(sf_sandbox, off, described, t0, describe_cache_hours=0)
    run(sf_sandbox, off, described, t0 + dt.timedelta(minutes=15), describe_cache_hours=0)
    assert sorted(described) == sorted(DESCRIBED)
    assert not off.exists()


def test_the_cache_file_holds_metadata_only(sf_sandbox, tmp_path, described) -> None:
    seed_people(sf_sandbox.store, 10)
    run(sf_sandbox, tmp_path, described, start(sf_sandbox))
    body = cache_file(tmp_path)
    assert body["api_version"] == "59.0" and set(body["describe"]) == DESCRIBED
    assert set(body["rows"]) == {"LeadStatus", "OpportunityStage"}
    text = json.dumps(body)
    for secret in (
        sf_sandbox.password,
        sf_sandbox.security_token,
        sf_sandbox.username,
        *sf_sandbox.issued_tokens(),
    ):
        assert secret not in text
    for lead in sf_sandbox.store.all("Lead"):  # no record
        assert lead["Id"] not in text and lead["Email"] not in text


# -- the org contradicts the cache: a field it lacks, a query the org refuses, a picklist value it lacks ------


def with_lead_fields(**extra: str) -> dict[str, Any]:
    lead = {"fields": {**OBJECTS["Lead"]["fields"], **extra}}
    return {**OBJECTS, "Lead": lead}


def test_a_newly_mapped_field_missing_from_the_cache_is_described_once(
    sf_sandbox, tmp_path, described
) -> None:
    t0 = start(sf_sandbox)
    run(sf_sandbox, tmp_path, described, t0)
    add_field(sf_sandbox, "Lead", "Rating__c")  # an admin adds the field, then maps it
    sf_sandbox.store.insert(
        "Lead", {"LastName": "New", "Company": "Acme", "Email": "n@x.nl", "Rating__c": "Hot"}
    )
    with capture_logs() as logs:
        _, facts = run(
            sf_sandbox,
            tmp_path,
            described,
            start(sf_sandbox),
            objects=with_lead_fields(Rating__c="extra.rating"),
        )
    assert described == ["Lead"] and sf_sandbox.call_counts()["describe"] == 1
    assert [f.extra.get("rating") for f in facts if f.ref.object == "Lead"] == ["Hot"]
    assert [e["objects"] for e in logs if e["event"] == "salesforce.describe.refresh"] == [["Lead"]]
    # the fresh describe went into the cache: the next run asks nothing
    run(sf_sandbox, tmp_path, described, t0 + HOUR, objects=with_lead_fields(Rating__c="extra.rating"))
    assert described == []


def test_a_field_the_org_does_not_have_either_is_a_config_error_after_one_refresh(
    sf_sandbox, tmp_path, described
) -> None:
    t0 = start(sf_sandbox)
    run(sf_sandbox, tmp_path, described, t0)
    with pytest.raises(ConfigError, match=r"objects\.Lead\.fields\.Ratng__c: no such field on Lead"):
        run(sf_sandbox, tmp_path, described, t0 + HOUR, objects=with_lead_fields(Ratng__c="extra.rating"))
    assert described == ["Lead"]
    assert sf_sandbox.call_counts()["describe"] == 1


def test_a_parent_field_missing_from_the_cache_refreshes_both_describes_on_its_path(
    sf_sandbox, tmp_path, described
) -> None:
    t0 = start(sf_sandbox)
    run(sf_sandbox, tmp_path, described, t0)
    add_field(sf_sandbox, "Account", "Segment__c")
    objects = {**OBJECTS, "Contact": {"fields": {"Email": "email", "Account.Segment__c": "extra.segment"}}}
    run(sf_sandbox, tmp_path, described, t0 + HOUR, objects=objects)
    assert sorted(described) == ["Account", "Contact"]


def test_a_stale_cached_describe_that_makes_the_org_refuse_the_query_is_dropped(
    sf_sandbox, tmp_path, described
) -> None:
    objects = with_lead_fields(Rating__c="extra.rating")
    add_field(sf_sandbox, "Lead", "Rating__c")
    sf_sandbox.store.insert("Lead", {"LastName": "New", "Company": "Acme", "Email": "n@x.nl"})
    t0 = start(sf_sandbox)
    run(sf_sandbox, tmp_path, described, t0, objects=objects)
    delete_field(sf_sandbox, "Lead", "Rating__c")  # an admin deletes the field; the YAML still maps it

    with capture_logs() as logs, pytest.raises(ConfigError, match="INVALID_FIELD"):
        run(sf_sandbox, tmp_path, described, t0 + HOUR, objects=objects)
    assert described == []  # the cache said the field exists
    (dropped,) = [e for e in logs if e["event"] == "salesforce.describe.dropped"]
    assert dropped["objects"] == ["Lead"] and dropped["code"] == "INVALID_FIELD"
    assert dropped["log_level"] == "warning"
    assert "Lead" not in cache_file(tmp_path)["describe"] and "Contact" in cache_file(tmp_path)["describe"]

    # the next run asks the org, which names the field that is gone before anything is read
    with pytest.raises(ConfigError, match=r"objects\.Lead\.fields\.Rating__c: no such field on Lead"):
        run(sf_sandbox, tmp_path, described, t0 + 2 * HOUR, objects=objects)
    assert described == ["Lead"]


def test_a_picklist_value_missing_from_the_cached_rows_refreshes_them_once_per_run(
    sf_sandbox, tmp_path, described
) -> None:
    t0 = start(sf_sandbox)
    run(sf_sandbox, tmp_path, described, t0)
    # an admin adds a converted lead status and a new opportunity stage; records get them
    sf_sandbox.store.insert(
        "LeadStatus", {"MasterLabel": "Signed", "ApiName": "Signed", "IsConverted": True, "SortOrder": 9}
    )
    sf_sandbox.store.insert(
        "OpportunityStage",
        {"MasterLabel": "Won Back", "ApiName": "Won Back", "IsClosed": True, "IsWon": True, "IsActive": True},
    )
    lead = sf_sandbox.store.insert(
        "Lead", {"LastName": "S", "Company": "Acme", "Email": "s@x.nl", "Status": "Signed"}
    )
    opp = sf_sandbox.store.insert(
        "Opportunity", {"Name": "O", "StageName": "Won Back", "CloseDate": "2026-12-01", "Amount": 10}
    )

    with capture_logs() as logs:
        src, facts = run(sf_sandbox, tmp_path, described, start(sf_sandbox))
    by_id = {f.ref.id: f for f in facts}
    assert by_id[lead].values["lead_status"] == "converted"
    assert by_id[opp].values["opportunity_won"] is True
    assert [e["event"] for e in logs].count("salesforce.picklist.refresh") == 1
    assert described == []
    assert not src.unknown_values

    # a value the org does not know either: reported as unknown without asking again in this run
    sf_sandbox.reset_calls()
    raw = {"Id": "00Q000000000001AAA", "SystemModstamp": "2026-11-01T12:00:00.000+0000", "Status": "Gone"}
    src.map("Lead", raw)
    assert sum(sf_sandbox.call_counts().values()) == 0
    assert src.unknown_values[("lead_status", "Gone")] == 1
    # the refreshed rows went into the cache: the next run knows the new values without asking
    with capture_logs() as logs:
        src, facts = run(sf_sandbox, tmp_path, described, t0 + 2 * HOUR)
    assert "salesforce.picklist.refresh" not in [e["event"] for e in logs]
    assert {f.ref.id: f for f in facts}[lead].values["lead_status"] == "converted"
