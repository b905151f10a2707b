"""The event feed end to end over HTTP: the demo world's run against the Salesforce and vtiger sandboxes, its
events appended to a JSON Lines file and POSTed to a loopback webhook receiver that fails, hangs and answers
slowly. Every transition and segment change arrives, in the order the state recorded them, signed, and a
failing webhook loses nothing: what it did not take goes first on the next run."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.state import StateStore
from connector_sandboxes.demo.config_template import DEMO_CONFIG
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import seeded_world
from connector_sandboxes.webhook import WebhookReceiver

AS_OF = dt.date(2026, 11, 23)
SECRET = "whsec-test-0123456789abcdef"
EVENTS_YAML = """
events:
  source: /connector/demo
  file: events/feed.jsonl
  webhooks:
    - name: warehouse
      url: HOOK_URL
      secret_env: CONNECTOR_WEBHOOK_SECRET
      batch_size: 40
      timeout: 2
"""


@dataclass
class FeedWorld:
    runner: Runner
    hook: WebhookReceiver
    feed_file: Path
    state_path: Path
    sleeps: list[float]

    def run(self, mode: str = "run") -> Any:
        return self.runner.execute(mode, AS_OF)

    def file_events(self) -> list[dict[str, Any]]:
        if not self.feed_file.exists():
            return []
        return [json.loads(line) for line in self.feed_file.read_text(encoding="utf-8").splitlines()]

    def hook_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for req in self.hook.accepted:
            events.extend(json.loads(req.body))
        return events

    def transitions(self) -> list[tuple[str, str | None, str]]:
        store = StateStore(self.state_path)
        try:
            return [(r["person_key"], r["from_stage"], r["to_stage"]) for r in store.transitions()]
        finally:
            store.close()


@pytest.fixture
def feed_world(tmp_path: Path) -> Iterator[FeedWorld]:
    people = generate(120, AS_OF, seed=5)
    with WebhookReceiver().start() as hook:
        config_text = DEMO_CONFIG + EVENTS_YAML.replace("HOOK_URL", hook.url)
        with seeded_world(tmp_path, people, AS_OF, seed=5, config_text=config_text) as seeded:
            config = load_config(seeded.config_path)
            sleeps: list[float] = []
            environ = {**seeded.environ, "CONNECTOR_WEBHOOK_SECRET": SECRET}
            runner = Runner(config, environ=environ, policy=RetryPolicy(attempts=3, sleep=sleeps.append))
            yield FeedWorld(runner, hook, tmp_path / "events" / "feed.jsonl", config.state_path(), sleeps)


def _signed(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def _stage_moves(events: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    return [
        (e["subject"], e["data"]["from"], e["data"]["to"])
        for e in events
        if e["type"] == "connector.stage.changed"
    ]


def test_file_and_webhook_receive_every_transition_of_a_demo_run_in_order_signed(
    feed_world: FeedWorld,
) -> None:
    summary = feed_world.run()
    assert summary.exit_code == 3, summary.errors  # the demo files carry malformed rows: partial
    from_file = feed_world.file_events()
    from_hook = feed_world.hook_events()
    transitions = feed_world.transitions()
    assert len(transitions) > 100
    # every transition the state recorded, in its order, in both sinks; the same events in the same order
    assert _stage_moves(from_file) == transitions
    assert from_hook == from_file
    segment_events = [e for e in from_file if e["type"].startswith("connector.segment.")]
    changes = sum(s["added"] + s["removed"] for t in summary.segments.values() for s in t.values())
    assert len(segment_events) == changes > 0
    assert len({e["id"] for e in from_file}) == len(from_file)
    for event in from_file:
        assert event["specversion"] == "1.0"
        assert event["source"] == "/connector/demo"
        assert event["time"].endswith("Z")
    first = next(e for e in from_file if e["type"] == "connector.stage.changed")
    assert set(first["data"]) == {"from", "to", "rule", "matched", "records", "labels", "as_of"}
    assert set(first["data"]["labels"]) == {"sf_out", "vt_out"}
    for req in feed_world.hook.requests:
        assert req.headers["Content-Type"].startswith("application/cloudevents-batch+json")
        assert _signed(req.body, req.headers["X-Connector-Signature"])
        assert len(json.loads(req.body)) <= 40
    assert summary.events["sinks"]["webhook:warehouse"] == {"delivered": len(from_file), "pending": 0}

    # a run with nothing new sends nothing
    requests_before = len(feed_world.hook.requests)
    again = feed_world.run()
    assert again.transitions == {}
    assert feed_world.file_events() == from_file
    assert len(feed_world.hook.requests) == requests_before


def test_a_failing_slow_and_hanging_webhook_loses_nothing(feed_world: FeedWorld) -> None:
    # batch 1: answered slowly; batch 2: hangs past the time-out, then a 503 with Retry-After, then taken;
    # batch 3: three 500s: the policy gives up, and that batch and all after it stay for the next run
    feed_world.hook.script("slow", "hang", "fail:503:7", "ok", "fail:500", "fail:500", "fail:500")
    summary = feed_world.run()
    assert summary.exit_code == 3, summary.errors  # unchanged by the webhook: the CRM writes all went
    assert summary.labels["sf_out"]["written"] > 0
    webhook = summary.events["sinks"]["webhook:warehouse"]
    assert webhook["delivered"] == 80
    assert webhook["pending"] > 0
    assert "HTTP 500" in webhook["error"]
    assert 7.0 in feed_world.sleeps  # Retry-After honoured
    assert any("webhook:warehouse" in note for note in summary.notes)
    everything = feed_world.file_events()
    assert len(everything) == 80 + webhook["pending"]
    assert feed_world.hook_events() == everything[:80]

    second = feed_world.run()
    assert second.events["sinks"]["webhook:warehouse"] == {"delivered": webhook["pending"], "pending": 0}
    # every event exactly as the file has it, in order; the hanging batch was sent again with the same ids
    assert feed_world.hook_events() == everything
    hung = [r for r in feed_world.hook.requests if r.answer is None]
    assert len(hung) == 1
    assert json.loads(hung[0].body) == everything[40:80]
    assert feed_world.file_events() == everything  # the file took them once


def test_plan_writes_no_event_and_says_how_many_a_run_would(feed_world: FeedWorld) -> None:
    plan = feed_world.run("plan")
    assert plan.exit_code in (0, 3), plan.errors
    assert not feed_world.feed_file.exists()
    assert feed_world.hook.requests == []
    would = plan.events["would_emit"]
    summary = feed_world.run()
    assert would == len(feed_world.file_events()) > 0
    assert summary.events["sinks"]["file"]["delivered"] == would
