"""`connector demo`: the main job end to end with no setup and no network beyond loopback.

It generates a synthetic funnel, starts the Salesforce and vtiger loopback sandboxes, seeds them and writes
the marketing files, writes a config, then runs `plan`, `run`, `run` again (which must write nothing) and a run
some weeks later (stages and segments move with the date), and prints the funnel, where the segments went, what
changed inside each CRM, and where the HTML report (funnel, trend over the runs, flows, segments, pipeline) is.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import click

from connector.config import load_config
from connector.pipeline import EXIT_CONFIG, EXIT_CRASH, EXIT_PARTIAL, EXIT_UNREACHABLE, Runner, Summary
from connector.report import funnel_report, funnel_svg, funnel_text
from connector.report_html import render_html
from connector.retry import RetryPolicy
from connector.run_history import run_history
from connector.state import StateStore

from .config_template import RERUN_CONFIG_FILE, rerun_config
from .dataset import generate
from .world import seeded_world

# the last run is this much later than the demo's "today": contracts come closer to their end and deals age, so
# stages and segments move and the report's trend has a third, different point
LATER = dt.timedelta(days=14)
REPORT_FILE = "report.html"


def _line(summary: Summary) -> str:
    labels = {t: s.get("written", s.get("changes", 0)) for t, s in summary.labels.items()}
    seg = {
        f"{t}/{name}": f"+{s.get('added', s['adds'])} -{s.get('removed', s['removes'])}"
        for t, segs in summary.segments.items()
        for name, s in segs.items()
        if s["adds"] or s["removes"]
    }
    return (
        f"{summary.mode}: outcome={summary.outcome} exit={summary.exit_code} people={summary.people.get('total')} "
        f"labels={labels} segments={seg or 'no changes'} tasks={_tasks(summary)} "
        f"rejected={summary.rejected['count']} api_calls={summary.api_calls}"
    )


def _tasks(summary: Summary) -> dict[str, int]:
    """Follow-up tasks per CRM target: created by a run, or that a plan would create."""
    targets = (summary.tasks or {}).get("targets", {})
    key = "would_create" if summary.mode == "plan" else "created"
    return {t: sum((s.get(key) or {}).values()) for t, s in sorted(targets.items())}


def run_demo(workdir: Path, *, people: int, as_of: dt.date, seed: int) -> int:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    click.echo(f"demo: {people} synthetic people, as of {as_of}, in {workdir}/")
    population = generate(people, as_of, seed)
    homes = Counter(p.home for p in population)
    click.echo(f"  homes: {dict(homes)}  (both = same e-mail in Salesforce and vtiger)")

    with seeded_world(workdir, population, as_of, seed=seed) as world:
        sf, vt, config_path = world.sf, world.vt, world.config_path
        click.echo(f"  salesforce sandbox {sf.instance_url}: {world.counts['salesforce']}")
        click.echo(f"  vtiger sandbox {vt.url}: {world.counts['vtiger']}")
        click.echo(f"  files: {world.counts['files']}")
        config = load_config(config_path)
        runner = Runner(config, environ=world.environ, policy=RetryPolicy(initial_wait=0.05, max_wait=0.5))

        click.echo("\n1. plan (dry run)")
        planned = runner.execute("plan", as_of)
        click.echo("  " + _line(planned))
        if planned.exit_code in (EXIT_CONFIG, EXIT_CRASH, EXIT_UNREACHABLE):
            for error in planned.errors:
                click.echo(f"  error: {error}", err=True)
            return planned.exit_code
        click.echo(f"  estimated write calls: {planned.estimated_write_calls}")

        sf.reset_calls()
        vt.reset_calls()
        click.echo("\n2. run")
        first = runner.execute("run", as_of)
        click.echo("  " + _line(first))
        for reason, n in first.rejected["reasons"].items():
            click.echo(f"    rejected {n}: {reason} (kept in state, retried next run)")
        if first.exit_code == EXIT_PARTIAL:
            click.echo(
                "  exit 3 (partial) is expected here: the demo's files hold deliberately malformed rows (the"
                " rejects above); everything else was written"
            )
        if first.unknown_values:
            click.echo(f"    unknown picklist values, not guessed: {first.unknown_values}")
        click.echo(f"  salesforce calls served: {_calls(sf.call_counts())}")
        click.echo(f"  vtiger calls served: {_calls(vt.calls)}")

        sf.reset_calls()
        vt.reset_calls()
        click.echo("\n3. run again with nothing new (must write nothing)")
        second = runner.execute("run", as_of)
        click.echo("  " + _line(second))
        click.echo(f"  salesforce calls served: {_calls(sf.call_counts())}")
        click.echo(f"  vtiger calls served: {_calls(vt.calls)}")

        won = _win_some_deals(sf.store)
        later = as_of + LATER
        click.echo(f"\n4. {won} Salesforce deals won since; run {LATER.days} days later, as of {later}")
        third = runner.execute("run", later)
        click.echo("  " + _line(third))

        click.echo("\nwhat the CRMs hold now")
        sf_labels = Counter(
            r.get("Funnel_Stage__c") for obj in ("Lead", "Contact") for r in sf.store.all(obj)
        )
        click.echo(f"  salesforce Funnel_Stage__c: {dict(sf_labels.most_common())}")
        click.echo(f"  salesforce campaign members: {_sf_campaigns(sf.store)}")
        stage_field = {m: vt.store.field_by_label(m, "Funnel stage") for m in ("Leads", "Contacts")}
        vt_labels = Counter(
            r.get(stage_field[m]) or None for m in ("Leads", "Contacts") for r in vt.store.all(m)
        )
        click.echo(f"  vtiger 'Funnel stage': {dict(vt_labels.most_common())}")
        click.echo("  " + _same_label_in_both(sf.store, vt.store, stage_field))
        sf_tasks, vt_tasks = sf.store.all("Task"), vt.store.all("Calendar")
        click.echo(
            f"  follow-up tasks (the revisit date sales set arrived): salesforce Task {len(sf_tasks)},"
            f" vtiger Calendar {len(vt_tasks)}"
            + (f", e.g. '{sf_tasks[0]['Subject']}' due {sf_tasks[0]['ActivityDate']}" if sf_tasks else "")
        )

    store = StateStore(config.state_path())
    report = funnel_report(store, config.stage_model)
    html = _write_html_report(store, config, workdir / REPORT_FILE, later)
    store.close()
    svg = workdir / "funnel.svg"
    svg.write_text(funnel_svg(report, config.stage_model, title=f"Funnel as of {as_of}"), encoding="utf-8")
    click.echo(f"\nfunnel ({report['people']} people)")
    click.echo(funnel_text(report, config.stage_model))
    click.echo(
        f"\nsegments for marketers: {workdir / 'segments'}/ ({', '.join(sorted(p.name for p in (workdir / 'segments').glob('*.csv') if not p.name.endswith('.changes.csv')))})"
    )
    click.echo(f"funnel picture: {svg}")
    click.echo(f"funnel report for marketers (open it in a browser): {html}")
    click.echo(f"config used: {config_path}  state: {config.state_path()}")
    click.echo(f"try: connector explain -c {config_path} {population[0].email}")
    rerun = workdir / RERUN_CONFIG_FILE
    rerun.write_text(rerun_config(), encoding="utf-8")
    click.echo(
        "\nthe same job against sandboxes of your own: start `connector sandbox salesforce --seed-people 50` and"
        " `connector sandbox vtiger --seed-people 50` (one terminal each), export the variables each prints,"
        f" then: connector run -c {rerun}"
    )
    if EXIT_PARTIAL in (first.exit_code, second.exit_code):
        click.echo(
            "exit 3 above comes from the demo's deliberately malformed file rows: each is rejected with its"
            f" reason (connector rejected -c {config_path}), kept in the state and retried next run; the rest"
            " was written"
        )
    click.echo("(`connector` is .venv/bin/connector after `make demo`; or `. .venv/bin/activate` first)")
    ok = second.exit_code in (0, 3) and not any(s.get("written") for s in second.labels.values())
    codes = (first.exit_code, second.exit_code, third.exit_code)
    return 0 if ok and all(c in (0, 3) for c in codes) else max(*codes, 1)


def _win_some_deals(store: Any) -> int:
    """Every fourth open deal in Salesforce is won (as a sales rep would mark it): people move from Opportunity
    to Customer and the open pipeline shrinks, so the report's trend and coverage move between runs."""
    open_deals = sorted(
        (r for r in store.all("Opportunity") if not r.get("IsClosed")), key=lambda r: str(r["Id"])
    )[::4]
    for deal in open_deals:
        store.update("Opportunity", deal["Id"], {"StageName": "Closed Won"})
    return len(open_deals)


def _write_html_report(store: StateStore, config: Any, path: Path, as_of: dt.date) -> Path:
    """What `connector report --html` writes: flows over the 90 days before the last run, as the command does."""
    data = funnel_report(store, config.stage_model, since=as_of - dt.timedelta(days=90), until=as_of)
    page = render_html(
        data, run_history(store), config.stage_model, config_name=Path(config.config_file).name, as_of=as_of
    )
    path.write_text(page, encoding="utf-8")
    return path


def _same_label_in_both(sf_store: Any, vt_store: Any, stage_field: dict[str, str]) -> str:
    """One stage per person: people held by both CRMs must carry the same label in each."""
    sf_by_email = {
        (r.get("Email") or "").lower(): r.get("Funnel_Stage__c")
        for obj in ("Lead", "Contact")
        for r in sf_store.all(obj)
        if not r.get("IsConverted")
    }
    both = agree = 0
    for module in ("Leads", "Contacts"):
        for r in vt_store.all(module):
            email = (r.get("email") or "").lower()
            if email in sf_by_email:
                both += 1
                agree += sf_by_email[email] == r.get(stage_field[module])
    return f"people in both CRMs: {both}, same label in both: {agree}"


def _calls(counter: Any) -> dict[str, int]:
    return dict(sorted(Counter(counter).items()))


def _sf_campaigns(store: Any) -> dict[str, int]:
    names = {c["Id"]: c["Name"] for c in store.all("Campaign")}
    return dict(Counter(names.get(m["CampaignId"], "?") for m in store.all("CampaignMember")))
