"""The Salesforce target shares its source's describe cache: label objects the source described are not
described again, and the org contradicting the cache is handled as in the source (over real HTTPS)."""

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
from connector.plan import LabelChange
from connector.retry import RetryPolicy
from connector.schema import RecordRef
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector.sources.salesforce.source import SalesforceSource
from connector.writers.salesforce.config import SalesforceWriterConfig
from connector.writers.salesforce.writer import SalesforceWriter
from connector_sandboxes.salesforce import SalesforceSandbox

pytestmark = pytest.mark.e2e


def source_config(sb: SalesforceSandbox) -> SalesforceSourceConfig:
    return SalesforceSourceConfig.model_validate(
        {
            "name": "sf_prod",
            "type": "salesforce",
            "auth": "password",
            "login_url": sb.login_url,
            "ca_bundle": sb.ca_bundle,
            "objects": {"Lead": {"fields": {"Email": "email"}}, "Contact": {"fields": {"Email": "email"}}},
        }
    )


def plugin_env(sb: SalesforceSandbox, state_dir: Path) -> Any:
    return PluginEnv(
        sources=[source_config(sb)],
        policy=RetryPolicy(attempts=4, sleep=lambda s: None),
        environ={
            "SF_USERNAME": sb.username,
            "SF_PASSWORD": sb.password,
            "SF_SECURITY_TOKEN": sb.security_token,
        },
        state_dir=state_dir,
    )


def make_writer(
    sb: SalesforceSandbox, state_dir: Path, label_field: str = "Funnel_Stage__c"
) -> SalesforceWriter:
    cfg = SalesforceWriterConfig.model_validate(
        {
            "name": "sf_out",
            "type": "salesforce",
            "source": "sf_prod",
            "label_field": {"Lead": label_field, "Contact": label_field},
        }
    )
    return SalesforceWriter.from_config(cfg, plugin_env(sb, state_dir))


def run_ctx(sb: SalesforceSandbox, later: dt.timedelta = dt.timedelta(0)) -> RunContext:
    at = sb.store.now() + dt.timedelta(seconds=1) + later
    return RunContext(as_of=at.date(), started_at=at)


def source_run(sb: SalesforceSandbox, state_dir: Path) -> None:
    """The source's part of a run: it describes Lead and Contact, into the cache."""
    source = SalesforceSource.from_config(source_config(sb), plugin_env(sb, state_dir))
    list(source.read({}, run_ctx(sb)))


def lead_labels(sb: SalesforceSandbox, n: int) -> list[LabelChange]:
    ids = [
        sb.store.insert("Lead", {"LastName": f"L{i}", "Company": "Acme", "Email": f"l{i}@x.nl"})
        for i in range(n)
    ]
    return [LabelChange(f"p-{i}", RecordRef("sf_prod", "Lead", i), None, "Prospect") for i in ids]


def test_label_objects_the_source_described_are_not_described_again(sf_sandbox, tmp_path, described) -> None:
    changes = lead_labels(sf_sandbox, 3)
    source_run(sf_sandbox, tmp_path)
    writer = make_writer(sf_sandbox, tmp_path)
    # taken to fall on both label objects: one label call they share, and no describe
    assert writer.estimate_calls(3, 0, 0) == 1
    described.clear()
    sf_sandbox.reset_calls()
    result = writer.write_labels(changes, run_ctx(sf_sandbox))
    assert described == [] and sf_sandbox.call_counts()["describe"] == 0
    assert result.failed == {} and sf_sandbox.call_counts()["composite/sobjects"] == 1
    assert {r["Funnel_Stage__c"] for r in sf_sandbox.store.all("Lead")} == {"Prospect"}


def test_without_a_cache_the_estimate_counts_the_describe(sf_sandbox, tmp_path) -> None:
    writer = make_writer(sf_sandbox, tmp_path)
    assert writer.estimate_calls(3, 0, 0) == 2 + 1  # a describe per label object, one label call for both


def test_a_label_field_missing_from_the_cached_describe_is_described_once(
    sf_sandbox, tmp_path, described
) -> None:
    changes = lead_labels(sf_sandbox, 2)
    source_run(sf_sandbox, tmp_path)
    add_field(sf_sandbox, "Lead", "Stage_Label__c")  # an admin adds the field the target now writes
    described.clear()
    result = make_writer(sf_sandbox, tmp_path, "Stage_Label__c").write_labels(changes, run_ctx(sf_sandbox))
    assert described == ["Lead"] and result.failed == {}
    assert {r.get("Stage_Label__c") for r in sf_sandbox.store.all("Lead")} == {"Prospect"}

    described.clear()
    with pytest.raises(ConfigError, match="Lead has no field Stage_Lable__c"):
        make_writer(sf_sandbox, tmp_path, "Stage_Lable__c").write_labels(changes, run_ctx(sf_sandbox))
    assert described == ["Lead"]  # asked once, then a config error


def test_a_label_write_refused_for_a_field_the_cache_still_has_drops_the_cached_describe(
    sf_sandbox, tmp_path, described
) -> None:
    add_field(sf_sandbox, "Lead", "Stage_Label__c")
    changes = lead_labels(sf_sandbox, 2)
    make_writer(sf_sandbox, tmp_path, "Stage_Label__c").write_labels(changes, run_ctx(sf_sandbox))
    delete_field(sf_sandbox, "Lead", "Stage_Label__c")

    described.clear()
    with capture_logs() as logs, pytest.raises(ConfigError, match="INVALID_FIELD"):
        make_writer(sf_sandbox, tmp_path, "Stage_Label__c").write_labels(
            changes, run_ctx(sf_sandbox, dt.timedelta(hours=1))
        )
    assert described == []  # the cache said the field exists
    (dropped,) = [e for e in logs if e["event"] == "salesforce.describe.dropped"]
    assert dropped["objects"] == ["Lead"] and dropped["log_level"] == "warning"
    cached = json.loads((tmp_path / "cache" / "salesforce-sf_prod-describe.json").read_text())
    assert "Lead" not in cached["describe"]

    with pytest.raises(ConfigError, match="Lead has no field Stage_Label__c"):
        make_writer(sf_sandbox, tmp_path, "Stage_Label__c").write_labels(
            changes, run_ctx(sf_sandbox, dt.timedelta(hours=2))
        )
    assert described == ["Lead"]
