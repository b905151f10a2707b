"""The event feed on a files-only project (no CRM): its config, the webhook's answers that are not retried, the
secret kept out of everything, the JSON Lines file after a torn write, and ids that stay the same."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from spine_helpers import AS_OF, CONFIG_YAML, Project

from connector.config import ConfigErrors
from connector.events import cloudevents, jsonl_file
from connector.pipeline import EXIT_CONFIG, EXIT_OK, Runner, Summary
from connector.retry import RetryPolicy
from connector.schema import RecordRef
from connector_sandboxes.webhook import WebhookReceiver

SECRET = "hook-secret-do-not-leak-42"
ENV = {"HOOK_SECRET": SECRET}


def events_yaml(url: str, **extra: str) -> str:
    lines = "".join(f"      {k}: {v}\n" for k, v in extra.items())
    return (
        "events:\n  file: feed/events.jsonl\n  webhooks:\n"
        f"    - name: hook\n      url: {url}\n      secret_env: HOOK_SECRET\n{lines}"
    )


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver().start() as receiver:
        yield receiver


def run(project: Project, environ: dict[str, str], sleeps: list[float] | None = None) -> Summary:
    policy = RetryPolicy(attempts=3, sleep=(sleeps if sleeps is not None else []).append)
    return Runner(project.config(), environ=environ, policy=policy).execute("run", AS_OF)


def test_events_config_errors_name_file_line_and_key_path(project: Project) -> None:
    project.write(
        "connector.yaml",
        CONFIG_YAML
        + events_yaml("http://hooks.example.com/in", batchsize="5", secret_env_="X").replace(
            "secret_env: HOOK_SECRET\n", "secret_env: HOOK SECRET\n"
        ),
    )
    with pytest.raises(ConfigErrors) as caught:
        project.config()
    text = str(caught.value)
    assert "connector.yaml:" in text
    assert "events.webhooks[0].url: " in text and "https://" in text
    assert "events.webhooks[0].batchsize: unknown key (did you mean 'batch_size'?)" in text
    assert "events.webhooks[0].secret_env: 'HOOK SECRET' is not an environment variable name" in text


def test_a_webhook_secret_missing_from_the_environment_stops_the_run_before_anything(
    project: Project, hook: WebhookReceiver
) -> None:
    project.write("connector.yaml", CONFIG_YAML + events_yaml(hook.url))
    summary = run(project, environ={})
    assert summary.exit_code == EXIT_CONFIG
    assert "HOOK_SECRET" in summary.errors[0]
    assert not project.out.exists()  # no segment file written
    assert project.query("SELECT COUNT(*) FROM transitions") == [(0,)]


def test_a_plain_4xx_is_not_retried_and_the_events_wait_for_the_next_run(
    project: Project, hook: WebhookReceiver
) -> None:
    project.write("connector.yaml", CONFIG_YAML + events_yaml(hook.url))
    hook.script("fail:400")
    sleeps: list[float] = []
    first = run(project, ENV, sleeps)
    assert first.exit_code == EXIT_OK  # the writes went; the feed is reported, not the exit code
    assert len(hook.requests) == 1 and sleeps == []
    kept = first.events["sinks"]["webhook:hook"]
    assert kept["delivered"] == 0 and kept["pending"] > 0 and "HTTP 400" in kept["error"]
    assert first.events["sinks"]["file"]["pending"] == 0
    second = run(project, ENV)
    assert second.events["sinks"]["webhook:hook"] == {"delivered": kept["pending"], "pending": 0}
    sent = json.loads(hook.accepted[0].body)
    on_file = [json.loads(line) for line in (project.root / "feed/events.jsonl").read_text().splitlines()]
    assert sent == on_file
    # every sink took everything: the outbox is emptied
    assert project.query("SELECT COUNT(*) FROM event_outbox") == [(0,)]


def test_the_signing_secret_is_never_in_the_summary_the_state_or_the_logs(
    project: Project, hook: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write("connector.yaml", CONFIG_YAML + events_yaml(hook.url))
    hook.script("fail:500", "fail:500", "fail:500")
    summary = run(project, ENV)
    assert "error" in summary.events["sinks"]["webhook:hook"]
    assert SECRET not in json.dumps(summary.to_json(detail=True))
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    for path in project.state_path.parent.rglob("*"):  # the state and what is kept beside it (cache/)
        assert path.is_dir() or SECRET.encode() not in path.read_bytes()


def test_an_append_after_a_torn_line_starts_on_a_line_of_its_own(tmp_path: Path) -> None:
    feed = tmp_path / "events.jsonl"
    feed.write_bytes(b'{"id":"a"}\n{"id":"b","da')  # a crash part way through a line
    jsonl_file.append(feed, ['{"id":"b"}', '{"id":"c"}'])
    assert feed.read_bytes().split(b"\n") == [
        b'{"id":"a"}',
        b'{"id":"b","da',
        b'{"id":"b"}',
        b'{"id":"c"}',
        b"",
    ]


def test_an_event_id_is_the_same_for_the_same_transition_and_differs_for_another() -> None:
    def event(transition_id: int, minute: int) -> dict[str, object]:
        return cloudevents.stage_changed(
            source="/c",
            transition_id=transition_id,
            person_key="p1",
            from_stage="lead",
            to_stage="prospect",
            rule="r",
            matched=["status=qualified"],
            refs=[RecordRef("crm", "person", "1")],
            labels={"sf": "Prospect"},
            as_of=AS_OF,
            time=dt.datetime(2026, 11, 23, 8, minute, tzinfo=dt.UTC),
        )

    assert event(7, 0)["id"] == event(7, 5)["id"]  # delivered again later: same id
    assert event(7, 0)["id"] != event(8, 0)["id"]
    assert event(7, 0)["time"] == "2026-11-23T08:00:00Z"
