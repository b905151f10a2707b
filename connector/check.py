"""`connector check`: every source and target logs in and confirms what a run needs, through the plugins'
`check_online` capability; this module builds them, collects their findings and prints them.

It reads no person's record and writes nothing (a `plan` does the reading). Exit 0 only when nothing failed;
2 when something a run needs is missing or refused (config, credentials, access, allowance); 4 when a system
did not answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import AppConfigBase
from .context import RunContext
from .findings import Finding, Findings
from .outcome import EXIT_CONFIG, EXIT_UNREACHABLE
from .pipeline import Runner
from .registry import load_source, load_writer
from .retry import RetryPolicy
from .sources.base import Source
from .writers.base import Writer


def run_check(
    config: AppConfigBase,
    *,
    environ: dict[str, str] | None = None,
    policy: RetryPolicy | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[Finding], RunContext]:
    """The findings of every enabled source, then every enabled target, and the calls they made."""
    runner = Runner(config, environ=environ, policy=policy)
    started = now or dt.datetime.now(dt.UTC)
    ctx = RunContext(as_of=started.date(), started_at=started, dry_run=True)
    findings: list[Finding] = []
    plugins: list[Source | Writer] = []
    builds: list[tuple[str, Callable[[], Source | Writer]]] = [
        *(
            (c.name, functools.partial(load_source(c.type).from_config, c, runner.env))
            for c in config.sources
            if c.enabled
        ),
        *(
            (c.name, functools.partial(load_writer(c.type).from_config, c, runner.env))
            for c in config.targets
            if c.enabled
        ),
    ]
    try:
        for name, build in builds:
            found = Findings(name)
            plugin = found.attempt("config", build)
            if plugin is None:
                findings.extend(found)
                continue
            plugins.append(plugin)
            findings.extend(found.attempt("check", functools.partial(plugin.check_online, ctx)) or found)
            given = _tasks_for(config, plugin)
            if given and isinstance(
                plugin, Writer
            ):  # a run creates follow-up tasks here: what that needs too
                tasks_found = Findings(name)
                checked = tasks_found.attempt("tasks", functools.partial(plugin.check_tasks, given, ctx))
                findings.extend(checked or tasks_found)
    finally:
        runner.close_plugins(plugins)
    findings.extend(values_seen(config))
    return findings, ctx


def _tasks_for(config: AppConfigBase, plugin: Source | Writer) -> list[Any]:
    """The configured tasks a run hands this target (none for a source, or a target that takes no tasks)."""
    if not isinstance(plugin, Writer) or not plugin.takes_tasks:
        return []
    return [t for t in config.tasks if t.create.targets == "all" or plugin.name in t.create.targets]


def values_seen(config: AppConfigBase) -> list[Finding]:
    """Per source, the picklist values with no meaning the last run counted in the records it read (`check`
    reads no record, so these counts come from the state): a fail for a source with `unknown_values: error`,
    whose next run holding them would stop. Nothing when there is no state or no run yet."""
    counted = sorted(_last_run_unknown_values(config.state_path()).items())
    out = []
    for cfg in config.sources:
        # keys are "<source>.<field>=<value>"
        seen = {
            cfg.name: [
                f"{k[len(cfg.name) + 1 :]} ({n} record(s))"
                for k, n in counted
                if k.startswith(f"{cfg.name}.")
            ]
        }
        if cfg.enabled and seen[cfg.name]:
            strict = getattr(cfg, "unknown_values", "report") == "error"
            out.append(
                Finding(
                    cfg.name,
                    "values seen",
                    "fail" if strict else "info",
                    "the last run read picklist values with no meaning (add them to value_maps): "
                    + ", ".join(seen[cfg.name]),
                )
            )
    return out


def _last_run_unknown_values(path: Path) -> dict[str, int]:
    """The newest `run`'s unknown_values ("source.field=value" -> records), read-only: check never creates,
    migrates or locks the state; one it cannot read simply gives nothing here."""
    if not path.is_file():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT summary FROM runs WHERE mode = 'run' AND summary IS NOT NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
    except sqlite3.Error:
        return {}
    try:
        values = json.loads(row[0]).get("unknown_values") if row else None
    except (ValueError, AttributeError):
        return {}
    return {str(k): int(v) for k, v in values.items()} if isinstance(values, dict) else {}


def exit_code(findings: list[Finding]) -> int:
    if any(f.status == "fail" for f in findings):
        return EXIT_CONFIG
    if any(f.status == "down" for f in findings):
        return EXIT_UNREACHABLE
    return 0


def to_json(findings: list[Finding], ctx: RunContext) -> dict[str, Any]:
    code = exit_code(findings)
    return {
        "ok": code == 0,
        "exit_code": code,
        "findings": [f.to_json() for f in findings],
        "api_calls": dict(ctx.api_calls),
    }


def table(findings: list[Finding]) -> str:
    """One line per finding, in columns: plugin, what, status, detail."""
    rows = [
        ("plugin", "check", "status", "detail"),
        *((f.plugin, f.check, f.status, f.detail) for f in findings),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3] for r in rows
    ]
    failed = sum(1 for f in findings if f.status in ("fail", "down"))
    lines.append(f"{failed} problem(s)" if failed else "everything a run needs is there")
    return "\n".join(lines)
