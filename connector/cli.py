"""The `connector` command line: validate, schema, check, discover, plan, run, explain, report, runs, demo and
the loopback sandboxes.

Exit codes: 0 ok, 1 unexpected crash, 2 config error, 3 partial failure (records rejected; they are kept and
retried next run), 4 a system was unreachable (or a source never read completely is down: nothing written),
5 another run holds the lock, 6 stopped at the API budget, 7 the state file is unusable (corrupt, not a
database, read-only, disk full, newer schema: the message says what to do; `connector state rebuild` starts
over), 8 held by the mass-change guard (nothing written), 9 nothing to show (`explain`: no such person; no
state yet), 130 interrupted (SIGTERM or Ctrl-C, at any moment).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import logs
from .config import AppConfigBase, ConfigErrors, load_config
from .context import plugin_env
from .errors import ConfigError, LockedError, RetriableError, StateError, UnreachableError
from .outcome import EXIT_CONFIG, EXIT_LOCKED, EXIT_NOT_FOUND, EXIT_PARTIAL, EXIT_STATE, EXIT_UNREACHABLE
from .registry import load_source, load_writer
from .schema import normalise_email

if TYPE_CHECKING:  # the run's modules load with the commands that run: `validate` and `schema` stay light
    from .pipeline import Summary
    from .sources.base import Source
    from .state import StateStore
    from .writers.base import Writer


def _as_of(value: str | None) -> dt.date:
    if not value:
        # the command line is the one place that reads the clock for "today"; everything below takes it as input
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date (YYYY-MM-DD)") from None


def _load(path: str) -> AppConfigBase:
    try:
        return load_config(path)
    except ConfigErrors as exc:
        for issue in exc.issues:
            click.echo(f"error: {issue}", err=True)
        click.echo(f"{len(exc.issues)} config error(s)", err=True)
        sys.exit(EXIT_CONFIG)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="connector", message="connector %(version)s")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--log-json/--log-text", default=None, help="Log format (default: text on a terminal, JSON otherwise)."
)
def cli(log_level: str, log_json: bool | None) -> None:
    """Keep one sales funnel true across Salesforce, vtiger CRM and marketing segments."""
    logs.configure(log_level, log_json)


CONFIG = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The YAML config file.",
)
AS_OF = click.option(
    "--as-of", "as_of", default=None, help="The run's 'today' (YYYY-MM-DD); default: today in UTC."
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object summarising the run.")


@cli.command()
@CONFIG
def validate(config_path: str) -> None:
    """Check the config: every error at once, each with file, line and key path (exit 2)."""
    config = _load(config_path)
    env = plugin_env(config)
    problems: list[str] = []
    plugins: list[Source | Writer] = []
    # every plugin is built and checked even when another one fails: all problems in one round
    builds: list[Callable[[], Source | Writer]] = [
        *(functools.partial(load_source(c.type).from_config, c, env) for c in config.sources if c.enabled),
        *(functools.partial(load_writer(c.type).from_config, c, env) for c in config.targets if c.enabled),
    ]
    for build in builds:
        try:
            plugin = build()
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        plugins.append(plugin)
        try:
            plugin.check()  # offline: a file source's file exists, nothing goes over the network
        except ConfigError as exc:
            problems.append(str(exc))
    for closing in [*plugins, env]:
        with contextlib.suppress(
            Exception
        ):  # nothing was opened over the network; a close cannot matter here
            closing.close()
    if problems:
        for p in dict.fromkeys(problems):  # a source and its target share credentials: say it once
            click.echo(f"error: {config_path}: {p}", err=True)
        sys.exit(EXIT_CONFIG)
    click.echo(
        f"{config_path}: ok ({len(config.sources)} sources, {len(config.targets)} targets, "
        f"{len(config.segments)} segments, {len(config.stage_model.rules)} stage rules)"
    )


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the config file (for editors: yaml-language-server, VS Code, JetBrains).

    The repository publishes it as config/connector.schema.json; a config refers to it with a first line
    `# yaml-language-server: $schema=<path or URL of the schema>`."""
    from .config_schema import render

    click.echo(render(), nl=False)


@cli.command()
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
def check(config_path: str, as_json: bool) -> None:
    """Log in to every source and target and confirm what a run needs; read no record, write nothing.

    Exit 0 only when everything is there; 2 when something is missing or refused; 4 when a system is down."""
    from .check import exit_code, run_check, table, to_json

    findings, ctx = run_check(_load(config_path))
    click.echo(json.dumps(to_json(findings, ctx), indent=2) if as_json else table(findings))
    sys.exit(exit_code(findings))


@cli.command()
@CONFIG
@click.argument("source")
@click.argument("objects", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print what was found as one JSON object.")
def discover(config_path: str, source: str, objects: tuple[str, ...], as_json: bool) -> None:
    """List what SOURCE's system offers; with OBJECTS, their fields and picklists and a starting YAML block."""
    from .discover import run_discover, text

    try:
        found = run_discover(_load(config_path), source, objects)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except (UnreachableError, RetriableError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    click.echo(json.dumps(found.to_json(), indent=2) if as_json else text(found))


def _who(change: dict[str, Any]) -> str:
    """`Ann de Vries <ann@acme.example>` for a line of `plan --full`; the person key when neither is known."""
    name, email = change.get("name"), change.get("email")
    if name and email:
        return f"{name} <{email}>"
    return str(name or email or f"person {change['person']}")


def _print_summary(summary: Summary, as_json: bool, full: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_json(detail=summary.mode == "plan" or full), indent=2, default=str))
        return
    head = "plan (dry run: nothing written)" if summary.mode == "plan" else f"run #{summary.run_id or '-'}"
    click.echo(f"{head} as of {summary.as_of}: {summary.outcome} (exit {summary.exit_code})")
    click.echo(f"people: {summary.people}")
    for src, stats in summary.read.items():
        click.echo(f"  read {src}: {stats}")
    click.echo("stages: " + ", ".join(f"{k}={v}" for k, v in summary.stages.items()))
    if summary.transitions:
        click.echo("transitions: " + ", ".join(f"{k}: {v}" for k, v in summary.transitions.items()))
    for target, stats in summary.labels.items():
        click.echo(f"labels {target}: {stats}")
        by_move = Counter((c["from"], c["to"]) for c in summary.label_changes if c["target"] == target)
        for (old, new), n in sorted(by_move.items(), key=lambda kv: -kv[1]):
            click.echo(f"    {old or '(none)'} -> {new}: {n}")
            if full:
                for c in summary.label_changes:
                    if c["target"] == target and (c["from"], c["to"]) == (old, new):
                        click.echo(f"      {_who(c)}  {c['ref']}")
    for target, segs in summary.segments.items():
        for seg, stats in segs.items():
            click.echo(f"segment {target}/{seg}: {stats}")
            if full:
                for c in summary.segment_changes:
                    if c["target"] == target and c["segment"] == seg:
                        click.echo(f"      {c['change']} {_who(c)}")
    _print_tasks(summary, full)
    if summary.rejected["count"] or summary.rejected["pending"]:
        click.echo(f"rejected: {summary.rejected}")
    if summary.suppressed:
        click.echo(
            f"suppressed: {summary.suppressed} record(s) of people erased on request read and left out"
        )
    if summary.erasure_pending:
        click.echo(f"erasure: {summary.erasure_pending} CRM action(s) still kept to try again")
    for target, predicted in summary.predicted_rejections.items():
        verb = "would refuse" if summary.mode == "plan" else "refused before sending"
        click.echo(f"predicted rejections: {target} {verb} {predicted['count']}: {predicted['reasons']}")
        for example in predicted["examples"]:
            click.echo(f"    {example}")
    if summary.unknown_values:
        click.echo(f"unknown picklist values (not guessed; add them to value_maps): {summary.unknown_values}")
    if summary.guard["verdict"] != "pass":
        verdict = {"hold": "would hold the run: nothing written", "allowed": "let through"}[
            summary.guard["verdict"]
        ]
        if summary.mode == "plan" and summary.guard["verdict"] == "hold":
            verdict = "a run would be held (nothing written) unless --allow-mass-change"
        click.echo(f"mass-change guard: {verdict}")
        for b in summary.guard["breaches"]:
            what = f"segment {b['segment']} removals" if b["segment"] else "label changes"
            click.echo(
                f"    {b['target']} {what}: {b['count']} of {b['held']} ({b['share']:.0%} > {b['limit']:.0%})"
            )
    click.echo(f"api calls: {summary.api_calls}  estimated write calls: {summary.estimated_write_calls}")
    for note in summary.notes:
        click.echo(f"  {note}")
    for error in summary.errors:
        click.echo(f"error: {error}", err=True)


def _print_tasks(summary: Summary, full: bool) -> None:
    """Follow-up tasks per target: `plan` what it would create (and `--full` for whom), `run` what it did."""
    for target, stats in (summary.tasks.get("targets") or {}).items():
        if summary.mode == "plan":
            click.echo(f"tasks {target}: would create {stats.get('would_create') or {}}")
            if full:
                for c in summary.task_changes:
                    if c["target"] == target:
                        click.echo(f"      {c['task']} {_who(c)}  due {c['due_date']}: {c['subject']}")
        else:
            click.echo(
                f"tasks {target}: created {stats['created']}, found in the CRM {stats['found']}, "
                f"failed {stats['failed']}"
            )


FULL_RECOMPUTE = click.option(
    "--full-recompute",
    is_flag=True,
    help="Resolve and decide every person again, not only those whose records or date windows changed.",
)


@cli.command()
@CONFIG
@AS_OF
@JSON
@click.option("--full", is_flag=True, help="List every label change and segment add/remove.")
@FULL_RECOMPUTE
def plan(config_path: str, as_of: str | None, as_json: bool, full: bool, full_recompute: bool) -> None:
    """Dry run: read sources and show every label change and segment add/remove; write nothing."""
    config = _load(config_path)
    from .pipeline import Runner

    summary = Runner(config, full_recompute=full_recompute).execute("plan", _as_of(as_of))
    _print_summary(summary, as_json, full)
    sys.exit(summary.exit_code)


@cli.command()
@CONFIG
@AS_OF
@JSON
@click.option("--full", is_flag=True, help="List every label change and segment add/remove.")
@click.option(
    "--metrics-file",
    envvar="CONNECTOR_METRICS_FILE",
    type=click.Path(dir_okay=False),
    help="Also write the run's figures as Prometheus metrics (node_exporter textfile collector).",
)
@click.option(
    "--pushgateway",
    envvar="CONNECTOR_PUSHGATEWAY",
    metavar="URL",
    help="Also push the run's metrics to this Prometheus Pushgateway (user:password@ in the URL for basic auth).",
)
@click.option(
    "--push-job", default="connector", show_default=True, help="The job label of the pushed metrics."
)
@click.option(
    "--push-instance",
    envvar="CONNECTOR_PUSH_INSTANCE",
    help="The instance label of the pushed metrics [default: the config file's name without suffix].",
)
@FULL_RECOMPUTE
@click.option(
    "--allow-mass-change",
    is_flag=True,
    help="Let this one run through the mass-change guard (after checking what `plan` says it would change).",
)
def run(
    config_path: str,
    as_of: str | None,
    as_json: bool,
    full: bool,
    metrics_file: str | None,
    pushgateway: str | None,
    push_job: str,
    push_instance: str | None,
    allow_mass_change: bool,
    full_recompute: bool,
) -> None:
    """Pull what changed, decide stages, push labels and segment memberships that changed."""
    config = _load(config_path)
    started = time.monotonic()
    # SIGTERM / Ctrl-C leave as KeyboardInterrupt: connector.entry ends the process with 130
    from .pipeline import Runner

    # a change-by-change listing only when it is printed (--full): a first run at scale has millions
    summary = Runner(
        config, allow_mass_change=allow_mass_change, full_recompute=full_recompute, list_changes=full
    ).execute("run", _as_of(as_of))
    if metrics_file:
        from .metrics import write_metrics

        write_metrics(
            summary, metrics_file, duration_seconds=time.monotonic() - started, finished_at=time.time()
        )
    if pushgateway:
        from .metrics import push_metrics

        # one group per config, not per host: a CronJob's pod name changes every run
        push_metrics(
            summary,
            pushgateway,
            job=push_job,
            instance=push_instance or Path(config_path).stem,
            duration_seconds=time.monotonic() - started,
            finished_at=time.time(),
        )
    _print_summary(summary, as_json, full)
    sys.exit(summary.exit_code)


F = TypeVar("F", bound=Callable[..., Any])


def _exit_7_on_state_error(command: F) -> F:
    """A command that reads the state ends with the state's own message and exit 7, not a traceback, when the
    state turns out unusable (at open, or at the first damaged page a query meets)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except StateError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_STATE)

    return wrapper  # type: ignore[return-value]


def _open_state(config: AppConfigBase) -> StateStore:
    from .state import StateStore

    path = config.state_path()
    if not path.exists():
        click.echo(f"no state at {path} yet: nothing has run with this config", err=True)
        sys.exit(EXIT_NOT_FOUND)
    return StateStore(path)


def find_person(store: StateStore, key: str) -> str | None:
    if store.person(key):
        return key
    identity = store.identity()
    for candidate in (key, f"email:{normalise_email(key)}", f"ext:{key}"):
        if candidate in identity:
            return identity[candidate]
    return None


@cli.command()
@CONFIG
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@_exit_7_on_state_error
def explain(config_path: str, key: str, as_json: bool) -> None:
    """Why a person (person key, e-mail, external id or source:Object:Id) has their stage."""
    from .erasure import is_suppressed
    from .state_codec import decode_decision, decode_snapshot

    config = _load(config_path)
    store = _open_state(config)
    if is_suppressed(store, key, os.environ):
        # exit 0: the e-mail is known, as suppressed; nothing else is kept, so nothing else is said
        store.close()
        click.echo(
            json.dumps({"suppressed": "erased on request"}) if as_json else "suppressed (erased on request)"
        )
        return
    person_key = find_person(store, key)
    if person_key is None:
        store.close()
        click.echo(
            f"no person known as '{key}' (try an e-mail, an external id or source:Object:Id)", err=True
        )
        sys.exit(EXIT_NOT_FOUND)
    row = store.person(person_key)
    assert row is not None
    decision = decode_decision(row["decision"])
    snapshot = decode_snapshot(row["snapshot"])
    history = [dict(r) for r in store.transitions(person_key)]
    labels = {t.name: store.labels(t.name) for t in config.targets}
    out: dict[str, Any] = {
        "person": person_key,
        "stage": row["stage"],
        "since": row["since"],
        "decision": decision,
        "records": snapshot["refs"],
        "values": snapshot["values"],
        "provenance": snapshot["provenance"],
        "history": [{k: h[k] for k in ("at", "from_stage", "to_stage", "rule", "reason")} for h in history],
        "labels": {t: {r: lbl for r, lbl in m.items() if r in snapshot["refs"]} for t, m in labels.items()},
        "segments": {
            t.name: sorted(s for s, keys in store.members(t.name).items() if person_key in keys)
            for t in config.targets
        },
    }
    store.close()
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    from .explain import explain_lines

    for line in explain_lines(out, config.stage_model):
        click.echo(line)


@cli.command()
@CONFIG
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--svg", "svg_path", type=click.Path(dir_okay=False), help="Also draw the funnel into this SVG file."
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Also write the whole report (funnel, trend, flows, segments, runs) into this offline HTML file.",
)
@click.option(
    "--since",
    default=None,
    help="Flows between stages from this date (YYYY-MM-DD); default: 90 days before the last run's as-of.",
)
@_exit_7_on_state_error
def report(
    config_path: str, as_json: bool, svg_path: str | None, html_path: str | None, since: str | None
) -> None:
    """Counts per stage, conversion between stages, time in stage and transitions, from the state."""
    from .report import funnel_report, funnel_svg, funnel_text
    from .report_html import render_html
    from .run_history import run_history

    config = _load(config_path)
    store = _open_state(config)
    history = run_history(store)
    # the report is as of the date the state reflects: the last run's, not the clock's
    last_as_of = dt.date.fromisoformat(history[-1].as_of) if history else None
    start = _as_of(since) if since else (last_as_of - dt.timedelta(days=90) if last_as_of else None)
    data = funnel_report(store, config.stage_model, since=start, until=last_as_of)
    store.close()
    if svg_path:
        Path(svg_path).write_text(funnel_svg(data, config.stage_model), encoding="utf-8")
    if html_path:
        page = render_html(
            data, history, config.stage_model, config_name=Path(config.config_file).name, as_of=last_as_of
        )
        Path(html_path).write_text(page, encoding="utf-8")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{data['people']} people")
    click.echo(funnel_text(data, config.stage_model))
    click.echo(
        "conversion: "
        + ", ".join(f"{k} {v:.0%}" if v is not None else f"{k} -" for k, v in data["conversion"].items())
    )
    if data["avg_days_in_stage"]:
        click.echo(
            "average days in stage: " + ", ".join(f"{k} {v}" for k, v in data["avg_days_in_stage"].items())
        )
    if svg_path:
        click.echo(f"funnel picture: {svg_path}")
    if html_path:
        click.echo(f"funnel report: {html_path}")


@cli.command()
@CONFIG
@click.argument("emails", nargs=-1)
@click.option(
    "--file",
    "emails_file",
    type=click.File(encoding="utf-8"),
    help="A file of e-mails to forget, one a line.",
)
@click.option("--json", "as_json", is_flag=True)
@_exit_7_on_state_error
def forget(config_path: str, emails: tuple[str, ...], emails_file: Any, as_json: bool) -> None:
    """Erase people on request: their data leaves the state and segment files; they never come back."""
    config = _load(config_path)
    wanted = list(emails) + ([line.strip() for line in emails_file if line.strip()] if emails_file else [])
    if not wanted:
        raise click.UsageError("name at least one e-mail, or --file")
    from .erasure import forget as forget_people
    from .pipeline import Runner
    from .state import StateStore

    store = StateStore(config.state_path())
    runner = Runner(config)
    # every target, enabled or not: a disabled one may still hold files with the person's rows
    writers = [load_writer(c.type).from_config(c, runner.env) for c in config.targets]
    try:
        store.lock()
        report = forget_people(config, store, wanted, os.environ, dt.datetime.now(dt.UTC), writers=writers)
    except LockedError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    finally:
        runner.close_plugins(writers)
        store.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    # a CRM action kept to try again: the erasure itself is done, the CRM part is not (yet)
    sys.exit(EXIT_PARTIAL if report.pending else 0)


@cli.command()
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="Print the runs as one JSON list, oldest first.")
@click.option("--limit", default=20, show_default=True, help="The newest N runs (0: all).")
@_exit_7_on_state_error
def runs(config_path: str, as_json: bool, limit: int) -> None:
    """Past runs with their outcome, people per stage, label and segment changes and rejects, from the state."""
    from .run_history import ALL_RUNS, run_history

    config = _load(config_path)
    store = _open_state(config)
    history = run_history(store, limit if limit > 0 else ALL_RUNS)
    store.close()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in history], indent=2))
        return
    if not history:
        click.echo("no runs yet")
        return
    for r in reversed(history):
        code = "-" if r.exit_code is None else r.exit_code
        people = "" if r.people is None else f", {r.people} people"
        click.echo(f"run #{r.id} as of {r.as_of} (started {r.started_at}): {r.outcome} (exit {code}){people}")
        if r.stages:
            click.echo("  stages: " + ", ".join(f"{k}={v}" for k, v in r.stages.items()))
        for target, stats in r.labels.items():
            click.echo(
                f"  labels {target}: {stats.get('changes', 0)} changes, {stats.get('written', 0)} written"
            )
        for seg in r.segments:
            unwritten = seg.planned_adds + seg.planned_removes - seg.added - seg.removed
            click.echo(
                f"  segment {seg.target}/{seg.segment}: {seg.size} members, +{seg.added} -{seg.removed}"
                + (f" ({unwritten} planned changes not written)" if unwritten else "")
            )
        if r.rejected or r.rejected_pending:
            click.echo(f"  rejected: {r.rejected} this run, {r.rejected_pending} kept for retry")


@cli.command()
@CONFIG
@click.option("--json", "as_json", is_flag=True)
@_exit_7_on_state_error
def rejected(config_path: str, as_json: bool) -> None:
    """Records kept from earlier runs because they could not be read or written, with their reasons.

    Each is retried on every run; fix the data (or the config) and the next run picks it up."""
    config = _load(config_path)
    store = _open_state(config)
    rows = [
        {
            "phase": r["phase"],
            "system": r["system"],
            "item": r["item"],
            "code": r["code"],
            "reason": r["reason"],
            "attempts": r["attempts"],
            "first_run": r["first_run"],
            "last_run": r["last_run"],
        }
        for r in store.rejected()
    ]
    store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no rejected records")
        return
    for r in rows:
        tries = f"{r['attempts']} attempt{'s' if r['attempts'] != 1 else ''}"
        click.echo(
            f"{r['phase']:<5} {r['system']}  {r['item']}  [{r['code'] or '-'}, {tries}]  {r['reason']}"
        )
    click.echo(f"{len(rows)} rejected record(s); each is retried on the next run")


@cli.group("state")
def state_group() -> None:
    """Look after the state file."""


@state_group.command("rebuild")
@CONFIG
@click.option("--force", is_flag=True, help="Start over even when the state is healthy (or newer).")
def state_rebuild(config_path: str, force: bool) -> None:
    """Move a damaged state aside (<state>.broken-<UTC stamp>) and start a fresh one.

    The next run then reads every source from scratch, decides every person again, writes every label once
    more and adds every segment member again (members already there are left as they are)."""
    from .state_rebuild import NothingToDo, rebuild

    config = _load(config_path)
    try:
        done = rebuild(config.state_path(), force=force)
    except LockedError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    except StateError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("error: starting over would not help here: nothing was moved", err=True)
        sys.exit(EXIT_STATE)
    except NothingToDo as exc:
        click.echo(f"{exc}: nothing was moved (use --force to start over anyway)", err=True)
        sys.exit(EXIT_CONFIG)
    if done.problem:
        click.echo(f"was unusable: {done.problem}")
    for original, target in done.moved.items():
        click.echo(f"moved {original} -> {target}")
    click.echo(
        f"fresh state at {done.path} (schema version {done.schema_version}): the next run reads every source "
        "from scratch"
    )


SANDBOXES_MISSING = (
    "the loopback sandboxes and the demo are not installed here (connector's wheel and Docker image leave them "
    "out): in a clone of the repository run `make demo`, or `pip install -e ./sandboxes` beside connector"
)


@contextlib.contextmanager
def _needs_sandboxes() -> Iterator[None]:
    """Exit 2 with a plain message when the sandbox package (sandboxes/ in the repository) is not installed.

    Imported only inside `demo` and `sandbox`, so every other command works in the runtime install."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "connector_sandboxes":
            raise
        click.echo(f"error: {SANDBOXES_MISSING}", err=True)
        sys.exit(EXIT_CONFIG)


@cli.command()
@click.option("--dir", "workdir", default=".demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--people", default=3000, show_default=True, help="Synthetic people to generate.")
@click.option("--as-of", "as_of", default="2026-11-23", show_default=True, help="The demo's 'today'.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the synthetic data set.")
@click.option("--verbose", is_flag=True, help="Show the runs' info logs too (default: warnings only).")
def demo(workdir: str, people: int, as_of: str, seed: int, verbose: bool) -> None:
    """Run the main job end to end on synthetic data and the loopback sandboxes, with no setup."""
    with _needs_sandboxes():
        from connector_sandboxes.demo import run_demo

    if not verbose:
        logs.configure("error")  # the demo prints its own account of rejected rows

    sys.exit(run_demo(Path(workdir), people=people, as_of=_as_of(as_of), seed=seed))


@cli.group()
def sandbox() -> None:
    """Loopback CRM sandboxes that speak the real wire protocols (for trying connector out)."""


@sandbox.command("salesforce")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True)
@click.option("--seed-people", default=0, show_default=True)
def sandbox_salesforce(host: str, port: int, seed_people: int) -> None:
    """Serve a Salesforce REST/Bulk 2.0 sandbox over HTTPS until Ctrl-C."""
    with _needs_sandboxes():
        from connector_sandboxes.salesforce import serve

    serve(host, port, seed_people=seed_people)


@sandbox.command("vtiger")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8088, show_default=True)
@click.option("--seed-people", default=0, show_default=True)
def sandbox_vtiger(host: str, port: int, seed_people: int) -> None:
    """Serve a vtiger 8.2 webservice sandbox until Ctrl-C."""
    with _needs_sandboxes():
        from connector_sandboxes.vtiger import serve

    serve(host, port, seed_people=seed_people)


def main() -> None:
    """Run the command line; SIGTERM / Ctrl-C leave as `KeyboardInterrupt` (connector.entry makes it 130).

    Click's standalone mode would turn an interrupt into "Aborted!" and exit 1, which means "a bug" here."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise exc.__context__ from None
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
