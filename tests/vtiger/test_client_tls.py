"""The vtiger client over real TLS (the sandbox with `tls=True`): `ca_bundle` is passed with every request, so
REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment cannot replace it, and a certificate that fails
verification is a config error naming ca_bundle, not retries ending as unreachable (also through `Runner`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.config import load_config
from connector.crm.vtiger.client import VtigerClient
from connector.errors import ConfigError
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector_sandboxes.tls import loopback_cert
from connector_sandboxes.vtiger import VtigerSandbox

pytestmark = [pytest.mark.e2e, pytest.mark.reliability("Transport and secrets")]
AS_OF = dt.date(2026, 11, 23)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def tls_sandbox() -> Iterator[VtigerSandbox]:
    with VtigerSandbox(tls=True) as sandbox:
        yield sandbox


@pytest.fixture
def other_ca(tmp_path: Path) -> str:
    """A valid CA bundle that did not sign the sandbox's certificate."""
    return str(loopback_cert(tmp_path / "other-ca").cert)


@pytest.fixture
def no_ca_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)


def client(sandbox: VtigerSandbox, verify: bool | str, sleeps: Sleeps) -> VtigerClient:
    policy = RetryPolicy(attempts=3, sleep=sleeps)
    return VtigerClient(sandbox.url, sandbox.username, sandbox.access_key, policy=policy, verify=verify)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_ca_bundle_wins_over_the_environment(
    tls_sandbox: VtigerSandbox, other_ca: str, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, other_ca)
    vt = client(tls_sandbox, tls_sandbox.ca_bundle, Sleeps())
    assert "Leads" in vt.call("listtypes")["types"]
    assert vt.create("Leads", {"lastname": "T", "assigned_user_id": "19x1"})["id"]


def test_a_certificate_no_configured_ca_signed_is_a_config_error_without_retries(
    tls_sandbox: VtigerSandbox, no_ca_variables: None
) -> None:
    sleeps = Sleeps()
    with pytest.raises(ConfigError) as bad:
        client(tls_sandbox, True, sleeps).call("listtypes")
    message = str(bad.value)
    assert "failed verification" in message and "ca_bundle" in message
    assert tls_sandbox.access_key not in message
    assert sleeps == [] and sum(tls_sandbox.calls.values()) == 0


def test_a_certificate_for_another_host_is_a_config_error(other_ca: str) -> None:
    # the certificate names 127.0.0.1 and localhost; served on 127.0.0.2 the names do not match
    with VtigerSandbox(tls=True, host="127.0.0.2") as sandbox:
        sleeps = Sleeps()
        with pytest.raises(ConfigError) as bad:
            client(sandbox, sandbox.ca_bundle, sleeps).call("listtypes")
    assert "failed verification" in str(bad.value) and "127.0.0.2" in str(bad.value)
    assert sleeps == []


CONFIG = """\
state: {{path: state.sqlite}}
stage_model: {{preset: default}}
sources:
  - name: vt_main
    type: vtiger
    url: {url}
{ca_bundle}    modules:
      Leads: {{fields: {{email: email, lastname: last_name, leadstatus: lead_status}}}}
targets:
  - name: vt_out
    type: vtiger
    source: vt_main
    label_field: {{Leads: "label:Funnel stage"}}
"""


def test_a_run_uses_the_ca_bundle_relative_to_its_config_whatever_the_environment_says(
    tls_sandbox: VtigerSandbox, other_ca: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_sandbox.store.create("Leads", {"lastname": "L", "email": "l@x.nl", "leadstatus": "Hot"})
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "crm.pem").write_bytes(Path(tls_sandbox.ca_bundle).read_bytes())
    config = tmp_path / "connector.yaml"
    config.write_text(
        CONFIG.format(url=tls_sandbox.url, ca_bundle="    ca_bundle: certs/crm.pem\n"), encoding="utf-8"
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca)
    monkeypatch.chdir(tmp_path.parent)  # the path is relative to the config file, not to where cron runs
    runner = Runner(
        load_config(config), environ=tls_sandbox.env(), policy=RetryPolicy(attempts=3, sleep=lambda s: None)
    )
    summary = runner.execute("run", AS_OF)
    assert summary.exit_code == 0, summary.errors
    assert summary.labels["vt_out"]["written"] == 1


def test_a_run_against_an_untrusted_certificate_ends_as_a_config_error(
    tls_sandbox: VtigerSandbox, tmp_path: Path, no_ca_variables: None
) -> None:
    tls_sandbox.store.create("Leads", {"lastname": "L", "email": "l@x.nl", "leadstatus": "Hot"})
    config = tmp_path / "connector.yaml"
    config.write_text(CONFIG.format(url=tls_sandbox.url, ca_bundle=""), encoding="utf-8")
    sleeps = Sleeps()
    runner = Runner(
        load_config(config), environ=tls_sandbox.env(), policy=RetryPolicy(attempts=5, sleep=sleeps)
    )
    summary = runner.execute("run", AS_OF)
    assert summary.exit_code == 2, summary.errors
    assert any("failed verification" in e and "ca_bundle" in e for e in summary.errors), summary.errors
    assert sleeps == []
