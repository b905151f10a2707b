"""The run's figures as Prometheus metrics: a textfile for node_exporter's textfile collector, or a push.

A cron container has no long-lived process to scrape; the textfile collector and the Pushgateway are the two
usual ways such jobs report. The file is replaced atomically, so a scrape never sees half a file.

For alerting on a batch job the one figure that matters is when it last succeeded
(`connector_last_success_timestamp_seconds`): a failed run must not erase it. A push after a good run
replaces the whole group (PUT); after a failed one it only updates the metrics it carries (POST) and leaves
out the success timestamp, so the gateway keeps the last good run's. The textfile carries the previous value
over from the file it replaces.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit

import structlog
from prometheus_client import CollectorRegistry, Gauge, Info, write_to_textfile

from .errors import RetriableError, UnreachableError
from .outcome import EXIT_OK, EXIT_PARTIAL, Summary
from .retry import RetryPolicy

log = structlog.get_logger(__name__)

LAST_SUCCESS = "connector_last_success_timestamp_seconds"
# a partial run (rejected records kept for the next run) still did its job: labels and segments were written
SUCCESS_EXIT_CODES = frozenset({EXIT_OK, EXIT_PARTIAL})


def _version() -> str:
    try:
        return package_version("connector")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_registry(
    summary: Summary, *, duration_seconds: float, finished_at: float, last_success: float | None
) -> CollectorRegistry:
    """Every metric of one run; `last_success` (Unix time) is left out when no run has succeeded yet."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"connector_{name}", doc, labels, registry=registry)

    Info("connector_build", "Version of connector and of Python that ran it", registry=registry).info(
        {"version": _version(), "python": platform.python_version()}
    )
    if last_success is not None:
        gauge("last_success_timestamp_seconds", "When a run last succeeded (exit 0 or 3; Unix time)").set(
            last_success
        )
    gauge("run_exit_code", "Exit code of the last run (0 ok, 3 partial, 4 unreachable, ...)").set(
        summary.exit_code
    )
    outcome = gauge("run_outcome", "1 for the outcome of the last run", ("outcome", "mode"))
    outcome.labels(summary.outcome, summary.mode).set(1)
    gauge("run_duration_seconds", "Wall time of the last run").set(duration_seconds)
    gauge("run_finished_timestamp_seconds", "When the last run finished (Unix time)").set(finished_at)
    gauge("people", "People known after the last run").set(summary.people.get("total", 0))
    stages = gauge("stage_people", "People per funnel stage", ("stage",))
    for stage, n in summary.stages.items():
        stages.labels(stage).set(n)
    labels = gauge("label_changes", "Stage label changes found by the last run", ("target",))
    written = gauge("labels_written", "Stage labels written by the last run", ("target",))
    for target, stats in summary.labels.items():
        labels.labels(target).set(stats.get("changes", 0))
        written.labels(target).set(stats.get("written", 0))
    members = gauge("segment_members", "Segment members per target", ("target", "segment"))
    moves = gauge(
        "segment_changes", "Segment adds and removes of the last run", ("target", "segment", "change")
    )
    for target, segments in summary.segments.items():
        for segment, stats in segments.items():
            members.labels(target, segment).set(stats.get("members", 0))
            moves.labels(target, segment, "add").set(stats.get("adds", 0))
            moves.labels(target, segment, "remove").set(stats.get("removes", 0))
    gauge("rejected_records", "Records rejected by the last run").set(summary.rejected.get("count", 0))
    gauge("rejected_pending", "Rejected records kept for retry").set(summary.rejected.get("pending", 0))
    if summary.pipeline:  # only with `pipeline:` configured: no coverage is not zero coverage
        gauge("pipeline_coverage_ratio", "Weighted open pipeline / revenue target of the period").set(
            summary.pipeline["coverage"]
        )
    calls = gauge("api_calls", "API calls made by the last run", ("system",))
    for system, n in summary.api_calls.items():
        calls.labels(system).set(n)
    return registry


def _previous_last_success(path: Path) -> float | None:
    """The success timestamp of the textfile about to be replaced, if it holds one."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text(encoding="utf-8")
    except OSError:  # no file yet (first run), or unreadable: the metric starts over
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    except ValueError:  # a damaged file: its old figures are not worth keeping
        return None
    return None


def write_metrics(summary: Summary, path: Path | str, *, duration_seconds: float, finished_at: float) -> None:
    path = Path(path)
    succeeded = summary.exit_code in SUCCESS_EXIT_CODES
    last_success = finished_at if succeeded else _previous_last_success(path)
    registry = build_registry(
        summary, duration_seconds=duration_seconds, finished_at=finished_at, last_success=last_success
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def redacted(url: str) -> str:
    """The gateway URL as it may appear in a log line or a message: without user and password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def push_metrics(
    summary: Summary,
    url: str,
    *,
    job: str,
    instance: str,
    duration_seconds: float,
    finished_at: float,
    policy: RetryPolicy | None = None,
) -> bool:
    """Push the run's metrics to a Prometheus Pushgateway, grouped by `job` and `instance`.

    A gateway that cannot be reached never changes the run's outcome (the CRMs are already written); it is
    logged as a warning, and the stale `connector_last_success_timestamp_seconds` is what alerts. Returns
    whether the push was accepted.
    """
    from prometheus_client import push_to_gateway, pushadd_to_gateway
    from prometheus_client.exposition import basic_auth_handler, default_handler

    succeeded = summary.exit_code in SUCCESS_EXIT_CODES
    registry = build_registry(
        summary,
        duration_seconds=duration_seconds,
        finished_at=finished_at,
        last_success=finished_at if succeeded else None,
    )
    parts = urlsplit(url)
    gateway = redacted(url)
    username, password = parts.username, parts.password

    def handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        # credentials from the URL go in an Authorization header, never in the URL that urllib logs or raises
        if username is not None:
            return basic_auth_handler(url, method, timeout, headers, data, username, password or "")
        return default_handler(url, method, timeout, headers, data)

    send = push_to_gateway if succeeded else pushadd_to_gateway

    def attempt() -> None:
        try:
            send(gateway, job=job, registry=registry, grouping_key={"instance": instance}, handler=handler)
        except HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                from .retry import parse_retry_after

                retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                raise RetriableError(
                    f"HTTP {exc.code}", retry_after=retry_after, code=str(exc.code)
                ) from None
            raise
        except (URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RetriableError(f"{type(reason).__name__}: {reason}") from None

    try:
        (policy or RetryPolicy()).call(attempt, what=f"pushgateway {gateway}")
    except HTTPError as exc:
        log.warning("metrics.push.failed", gateway=gateway, job=job, instance=instance, status=exc.code)
        return False
    except UnreachableError as exc:
        log.warning("metrics.push.failed", gateway=gateway, job=job, instance=instance, error=str(exc))
        return False
    log.info(
        "metrics.push.done",
        gateway=gateway,
        job=job,
        instance=instance,
        method="PUT" if succeeded else "POST",
    )
    return True
