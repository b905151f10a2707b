"""Secrets never reach a log line: registered values and secret-looking keys are masked."""

from __future__ import annotations

import json

import pytest
import structlog

from connector import logs


def test_registered_secrets_and_secret_keys_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    logs.register_secret("hunter2-very-secret")
    logs.configure("info", json_logs=True)
    try:
        log = structlog.get_logger("test")
        log.info("client.login", url="https://x/?pw=hunter2-very-secret", password="plain", note="ok")
        log.error("client.failed", error=RuntimeError("bad token hunter2-very-secret"))
    finally:
        logs.configure("warning")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["url"] == "https://x/?pw=***"
    assert lines[0]["password"] == "***"
    assert lines[0]["note"] == "ok"
    assert lines[1]["error"] == "bad token ***"
    assert "hunter2" not in json.dumps(lines)


def test_short_values_are_not_registered() -> None:
    logs.register_secret("ab")  # too short to mask safely: it would blank out ordinary words
    assert "ab" not in logs._SECRETS
