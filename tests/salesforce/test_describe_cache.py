"""The describe cache file on its own: freshness, its key, merging, and that it never fails a run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sf_fakes import source_config

from connector.crm.salesforce.connection import open_describe_cache
from connector.crm.salesforce.describe_cache import DescribeCache, cache_path, trim_describe

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
LEAD = {"name": "Lead", "fields": [{"name": "Id", "type": "id", "updateable": False}]}


def cache(path: Path, *, at: dt.datetime = T0, version: str = "59.0", hours: float = 24) -> DescribeCache:
    c = DescribeCache(
        path, api_version=version, login="https://login.example.test", ttl=dt.timedelta(hours=hours)
    )
    c.now = at
    return c


def test_an_entry_is_used_until_the_ttl_has_passed(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cache(path).put("describe", "Lead", LEAD)
    assert cache(path, at=T0 + dt.timedelta(hours=23, minutes=59)).get("describe", "Lead") == LEAD
    assert cache(path, at=T0 + dt.timedelta(hours=24)).get("describe", "Lead") is None
    # a run whose clock is behind the one that wrote the entry: the same TTL, counted the other way
    assert cache(path, at=T0 - dt.timedelta(minutes=5)).get("describe", "Lead") == LEAD
    assert cache(path, at=T0 - dt.timedelta(hours=24)).get("describe", "Lead") is None
    assert cache(path).get("describe", "Contact") is None
    assert cache(path).get("rows", "Lead") is None  # describes and picklist rows are apart


def test_another_api_version_or_login_endpoint_finds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cache(path).put("describe", "Lead", LEAD)
    assert cache(path, version="60.0").get("describe", "Lead") is None
    other = DescribeCache(path, api_version="59.0", login="https://test.salesforce.com", ttl=dt.timedelta(1))
    other.now = T0
    assert other.get("describe", "Lead") is None
    # and writing for the new version leaves no entry of the old one behind
    cache(path, version="60.0").put("describe", "Contact", LEAD)
    body = json.loads(path.read_text())
    assert body["api_version"] == "60.0" and set(body["describe"]) == {"Contact"}


def test_two_holders_of_one_file_merge_their_changes(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    source, target = cache(path), cache(path)
    assert target.get("describe", "Lead") is None  # the target loaded the (empty) file first
    source.put("describe", "Lead", LEAD)
    target.put("describe", "Contact", LEAD)
    assert set(json.loads(path.read_text())["describe"]) == {"Lead", "Contact"}
    target.drop("describe", "Lead")
    assert cache(path).get("describe", "Lead") is None
    assert cache(path).get("describe", "Contact") == LEAD


def test_a_broken_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"format": 1, "api_version": "59.0", "descr')
    c = cache(path)
    assert c.get("describe", "Lead") is None
    c.put("describe", "Lead", LEAD)
    assert cache(path).get("describe", "Lead") == LEAD
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temporary file left


def test_a_cache_that_cannot_be_written_does_not_fail_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the cache directory should be")
    c = cache(blocker / "cache" / "c.json")
    c.put("describe", "Lead", LEAD)  # logged, not raised
    assert c.get("describe", "Lead") == LEAD  # still serves this run from memory


def test_only_what_connector_reads_of_a_describe_is_kept() -> None:
    body = {
        "name": "Lead",
        "urls": {"sobject": "/services/data/v59.0/sobjects/Lead"},
        "fields": [
            {
                "name": "Status",
                "type": "picklist",
                "updateable": True,
                "relationshipName": None,
                "referenceTo": [],
                "picklistValues": [{"value": "Open"}],
                "inlineHelpText": "free text an admin wrote",
            }
        ],
    }
    assert trim_describe(body) == {
        "name": "Lead",
        "fields": [
            {
                "name": "Status",
                "type": "picklist",
                "updateable": True,
                "relationshipName": None,
                "referenceTo": [],
            }
        ],
    }


def test_the_file_is_named_after_the_source_and_switched_off_by_zero_hours(tmp_path: Path) -> None:
    assert cache_path(tmp_path, "sf prod/eu") == tmp_path / "cache" / "salesforce-sf_prod_eu-describe.json"
    cfg = source_config()
    made = open_describe_cache(cfg.name, cfg, cfg.describe_cache_hours, tmp_path)
    assert made is not None and made.path == tmp_path / "cache" / "salesforce-sf_prod-describe.json"
    assert made.ttl == dt.timedelta(hours=24)
    off = source_config(describe_cache_hours=0)
    assert open_describe_cache(off.name, off, off.describe_cache_hours, tmp_path) is None
    assert open_describe_cache(cfg.name, cfg, cfg.describe_cache_hours, None) is None


@pytest.mark.parametrize("hours", [-1, "soon"])
def test_a_negative_or_wordy_ttl_is_a_config_error(hours: object) -> None:
    with pytest.raises(ValueError, match="describe_cache_hours"):
        source_config(describe_cache_hours=hours)


def test_a_restricted_picklist_keeps_its_values_for_preflight() -> None:
    # preflight predicts INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST from the (cached) describe: it needs these
    body = {
        "name": "Lead",
        "fields": [
            {
                "name": "Funnel_Stage__c",
                "type": "picklist",
                "updateable": True,
                "restrictedPicklist": True,
                "picklistValues": [
                    {"value": "Lead", "label": "Lead", "active": True, "defaultValue": False},
                    {"value": "Old", "label": "Old", "active": False, "defaultValue": False},
                ],
            }
        ],
    }
    assert trim_describe(body)["fields"] == [
        {
            "name": "Funnel_Stage__c",
            "type": "picklist",
            "updateable": True,
            "restrictedPicklist": True,
            "picklistValues": [{"value": "Lead", "active": True}, {"value": "Old", "active": False}],
        }
    ]
