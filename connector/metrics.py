"""The run's figures as Prometheus metrics, written to a textfile for node_exporter's textfile collector.

A cron container has no long-lived process to scrape; the textfile collector is the usual way such jobs
report. The file is replaced atomically, so a scrape never sees half a file.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from .outcome import Summary


def write_metrics(summary: Summary, path: Path | str, *, duration_seconds: float, finished_at: float) -> None:
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"connector_{name}", doc, labels, registry=registry)

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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
