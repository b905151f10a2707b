"""Transport settings that are safe by default: vtiger over https unless the host is loopback, and `ca_bundle`
paths relative to the config file, checked by `validate` (file, line and key path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import ConfigErrors, load_config

pytestmark = pytest.mark.reliability("Transport and secrets")

HEAD = """\
stage_model: {preset: default}
sources:
"""
VTIGER = """\
  - name: vt_main
    type: vtiger
    url: {url}
{extra}    modules:
      Leads: {{fields: {{email: email}}}}
"""
SALESFORCE = """\
  - name: sf_prod
    type: salesforce
    login_url: https://login.example.test
{extra}    objects:
      Lead: {{fields: {{Email: email}}}}
"""


def write(tmp_path: Path, *sources: str) -> Path:
    path = tmp_path / "conf" / "connector.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEAD + "".join(sources), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    return [str(issue) for issue in info.value.issues]


@pytest.mark.parametrize(
    "url",
    [
        "http://crm.example.com",
        "http://10.0.0.7:8080",
        "http://localhost.example.com",
        "ftp://crm.example.com",
        "https://",
    ],
)
def test_vtiger_over_plain_http_to_a_real_host_is_refused_with_file_line_and_key(
    tmp_path: Path, url: str
) -> None:
    path = write(tmp_path, VTIGER.format(url=url, extra=""))
    found = problems(path)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:5 sources[0].url: ")
    assert "https://" in found[0]


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com",
        "https://crm.example.com/vtigercrm/",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:8000",
        "http://LOCALHOST",
        "http://[::1]:8080",
    ],
)
def test_https_or_a_loopback_host_is_accepted(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, VTIGER.format(url=url, extra="")))
    assert config.sources[0].url == url.rstrip("/")


def test_ca_bundle_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    certs = tmp_path / "conf" / "certs"
    certs.mkdir(parents=True)
    (certs / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    extra = "    ca_bundle: certs/ca.pem\n"
    path = write(
        tmp_path,
        VTIGER.format(url="https://crm.example.com", extra=extra),
        SALESFORCE.format(extra=extra),
    )
    config = load_config(path)
    expected = str(certs / "ca.pem")
    assert [s.ca_bundle for s in config.sources] == [expected, expected]


def test_a_missing_ca_bundle_is_reported_by_validate_for_both_crms(tmp_path: Path) -> None:
    (tmp_path / "conf" / "certs").mkdir(parents=True)
    path = write(
        tmp_path,
        VTIGER.format(url="https://crm.example.com", extra="    ca_bundle: certs/missing.pem\n"),
        SALESFORCE.format(extra="    ca_bundle: certs\n"),  # a folder is no bundle either
    )
    found = problems(path)
    assert len(found) == 2, found
    assert found[0].startswith(f"{path}:6 sources[0].ca_bundle: ")
    assert str(tmp_path / "conf" / "certs" / "missing.pem") in found[0]
    assert found[1].startswith(f"{path}:12 sources[1].ca_bundle: ")
    assert "not a readable file" in found[0] and "not a readable file" in found[1]
