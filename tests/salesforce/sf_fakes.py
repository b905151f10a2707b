"""Small builders shared by the Salesforce tests (request shapes with `responses`; a clock the test sets)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connector.context import PluginEnv, RunContext
from connector.crm.salesforce.auth import SalesforceSecrets
from connector.crm.salesforce.budget import ApiBudget
from connector.crm.salesforce.client import SalesforceClient
from connector.retry import RetryPolicy
from connector.sources.salesforce.config import SalesforceSourceConfig
from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.salesforce.objects import FieldDef


class Clock:
    """A clock the test sets and moves (the org's, or the run's): `clock.at += timedelta(...)`."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


LOGIN = "https://login.example.test"
INSTANCE = "https://org.example.test"
BASE = f"{INSTANCE}/services/data/v59.0/"
SOAP = f"{LOGIN}/services/Soap/u/59.0"
TOKEN = f"{LOGIN}/services/oauth2/token"

SESSION_ENV = {"SF_SESSION_ID": "00Dsession!abc", "SF_INSTANCE_URL": INSTANCE}
PASSWORD_ENV = {"SF_USERNAME": "ops@example.com", "SF_PASSWORD": "pa<ss", "SF_SECURITY_TOKEN": "TOK'1"}


def soap_ok(session_id: str = "00Dfresh!1") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
        f"<soapenv:Body><loginResponse><result><serverUrl>{INSTANCE}/services/Soap/u/59.0/00D</serverUrl>"
        f"<sessionId>{session_id}</sessionId></result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )


def source_config(**overrides: Any) -> SalesforceSourceConfig:
    data: dict[str, Any] = {
        "name": "sf_prod",
        "type": "salesforce",
        "auth": "session",
        "login_url": LOGIN,
        "objects": {
            "Lead": {"fields": {"Email": "email", "LastName": "last_name", "Status": "lead_status"}},
        },
    }
    data.update(overrides)
    return SalesforceSourceConfig.model_validate(data)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def policy(sleeps: Sleeps | None = None, attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, sleep=sleeps if sleeps is not None else Sleeps())


def client(
    cfg: SalesforceSourceConfig | None = None,
    environ: dict[str, str] | None = None,
    *,
    share: float | None = None,
    sleeps: Sleeps | None = None,
    attempts: int = 4,
) -> SalesforceClient:
    cfg = cfg or source_config()
    secrets = SalesforceSecrets.load(cfg.env_prefix, environ if environ is not None else SESSION_ENV)
    return SalesforceClient(cfg, secrets, policy=policy(sleeps, attempts), budget=ApiBudget(share=share))


def env(
    cfg: SalesforceSourceConfig, environ: dict[str, str] | None = None, sleeps: Sleeps | None = None
) -> Any:
    return PluginEnv(
        sources=[cfg],
        policy=policy(sleeps),
        environ=environ if environ is not None else SESSION_ENV,
    )


def ctx(started: dt.datetime | None = None) -> RunContext:
    started = started or dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    return RunContext(as_of=started.date(), started_at=started)


def page(records: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    return {
        "totalSize": len(records),
        "done": next_url is None,
        "records": [{"attributes": {"type": "X", "url": "/x"}, **r} for r in records],
        **({"nextRecordsUrl": next_url} if next_url else {}),
    }


def describe(obj: str, fields: list[str], relationships: dict[str, str] | None = None) -> dict[str, Any]:
    rel = relationships or {}
    return {
        "name": obj,
        "fields": [
            {
                "name": f,
                "type": "string",
                "updateable": f not in ("Id", "SystemModstamp", "IsDeleted"),
                "relationshipName": rel.get(f),
            }
            for f in fields
        ],
    }


def add_field(sb: SalesforceSandbox, obj: str, name: str, type_: str = "string") -> None:
    """An admin adds a custom field in the org."""
    odef = sb.store.object_def(obj)
    assert odef is not None
    fd = FieldDef(name=name, type=type_, label=name.removesuffix("__c"), length=255)
    odef.fields[name] = fd
    odef.by_lower[name.lower()] = fd


def delete_field(sb: SalesforceSandbox, obj: str, name: str) -> None:
    odef = sb.store.object_def(obj)
    assert odef is not None
    del odef.fields[name]
    del odef.by_lower[name.lower()]
