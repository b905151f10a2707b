"""`run --pushgateway URL`: the run's metrics pushed the way Prometheus wants batch jobs to report.

A loopback HTTP receiver stands in for the Pushgateway and records what arrives (method, path, headers, body),
so the push is checked over real HTTP as the gateway would see it.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from spine_helpers import AS_OF, Project

from connector.cli import cli
from connector.metrics import LAST_SUCCESS, push_metrics, write_metrics
from connector.outcome import EXIT_PARTIAL, EXIT_UNREACHABLE, Summary
from connector.retry import RetryPolicy


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Gateway:
    """A loopback Pushgateway: answers each request with the next of `statuses` (then 200), records it."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[tuple[int, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            gw.requests.append(Received(self.command, self.path, dict(self.headers.items()), body))
            status, headers = gw.statuses.pop(0) if gw.statuses else (200, {})
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_POST = _record

        def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gw.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield gw
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_run_pushes_its_metrics_with_job_and_instance_labels(project: Project, gateway: Gateway) -> None:
    result = CliRunner().invoke(
        cli,
        [
            *("--log-level", "warning", "run", "-c", str(project.config_path), "--as-of", AS_OF.isoformat()),
            *("--pushgateway", gateway.url, "--push-instance", "shop-nl"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    (request,) = gateway.requests
    # a good run replaces its whole group
    assert (request.method, request.path) == ("PUT", "/metrics/job/connector/instance/shop-nl")
    got = samples(request.body)
    assert got[(LAST_SUCCESS, ())] > 1_700_000_000
    assert got[("connector_run_duration_seconds", ())] >= 0
    assert got[("connector_run_exit_code", ())] == 0
    (build,) = [labels for name, labels in got if name == "connector_build_info"]
    assert dict(build)["version"] == "0.1.0"
    assert dict(build)["python"].startswith("3.")
    assert got[("connector_people", ())] > 0


def test_the_instance_label_defaults_to_the_config_name(project: Project, gateway: Gateway) -> None:
    result = CliRunner().invoke(
        cli,
        ["--log-level", "warning", "run", "-c", str(project.config_path), "--as-of", AS_OF.isoformat()],
        env={"CONNECTOR_PUSHGATEWAY": gateway.url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert [r.path for r in gateway.requests] == ["/metrics/job/connector/instance/connector"]


def test_a_failed_run_keeps_the_last_success_timestamp_on_the_gateway(gateway: Gateway) -> None:
    failed = Summary(mode="run", as_of=AS_OF.isoformat(), outcome="unreachable", exit_code=EXIT_UNREACHABLE)
    assert push_metrics(
        failed, gateway.url, job="connector", instance="x", duration_seconds=1.5, finished_at=1_800_000_000.0
    )
    (request,) = gateway.requests
    # POST only replaces the metrics it carries; the success timestamp is not among them
    assert request.method == "POST"
    got = samples(request.body)
    assert (LAST_SUCCESS, ()) not in got
    assert got[("connector_run_exit_code", ())] == EXIT_UNREACHABLE


def test_a_partial_run_counts_as_a_success(gateway: Gateway) -> None:
    partial = Summary(mode="run", as_of=AS_OF.isoformat(), outcome="partial", exit_code=EXIT_PARTIAL)
    assert push_metrics(partial, gateway.url, job="j", instance="i", duration_seconds=1, finished_at=1.8e9)
    assert gateway.requests[0].method == "PUT"
    assert samples(gateway.requests[0].body)[(LAST_SUCCESS, ())] == 1.8e9


def test_a_busy_gateway_is_retried_honouring_retry_after(gateway: Gateway) -> None:
    gateway.statuses = [(503, {"Retry-After": "7"}), (502, {})]
    slept: list[float] = []
    ok = push_metrics(
        Summary(mode="run", as_of="2026-01-01"),
        gateway.url,
        job="j",
        instance="i",
        duration_seconds=1,
        finished_at=1.8e9,
        policy=RetryPolicy(sleep=slept.append, initial_wait=0.01, max_wait=0.02),
    )
    assert ok
    assert len(gateway.requests) == 3
    assert slept[0] == 7


def test_a_refused_push_is_not_retried_and_does_not_fail_the_run(gateway: Gateway) -> None:
    gateway.statuses = [(400, {})]
    slept: list[float] = []
    ok = push_metrics(
        Summary(mode="run", as_of="2026-01-01"),
        gateway.url,
        job="j",
        instance="i",
        duration_seconds=1,
        finished_at=1.8e9,
        policy=RetryPolicy(sleep=slept.append),
    )
    assert not ok
    assert len(gateway.requests) == 1
    assert slept == []


def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_the_logs(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    url = gateway.url.replace("http://", "http://ops:s3cr3t-pw@")
    gateway.statuses = [(400, {})]
    with structlog.testing.capture_logs() as logs:
        push_metrics(
            Summary(mode="run", as_of="2026-01-01"),
            url,
            job="j",
            instance="i",
            duration_seconds=1,
            finished_at=1.8e9,
            policy=RetryPolicy(sleep=lambda _: None),
        )
    (request,) = gateway.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"ops:s3cr3t-pw").decode()
    assert logs and "s3cr3t-pw" not in repr(logs)
    assert "s3cr3t-pw" not in capsys.readouterr().err


def test_the_textfile_keeps_the_last_success_through_a_failed_run(tmp_path: Path) -> None:
    path = tmp_path / "connector.prom"
    write_metrics(Summary(mode="run", as_of="2026-01-01"), path, duration_seconds=1, finished_at=1.8e9)
    failed = Summary(mode="run", as_of="2026-01-02", outcome="unreachable", exit_code=EXIT_UNREACHABLE)
    write_metrics(failed, path, duration_seconds=1, finished_at=1.9e9)
    got = samples(path.read_text())
    assert got[(LAST_SUCCESS, ())] == 1.8e9
    assert got[("connector_run_finished_timestamp_seconds", ())] == 1.9e9
    assert ("connector_build_info", ()) not in got  # build info carries its labels
    assert any(name == "connector_build_info" for name, _ in got)
