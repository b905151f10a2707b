"""What `connector check` reports: one finding per thing a run needs (a login, the API version, an object, a
mapped field, a campaign, the API allowance), each ok or not, with a plain reason.

Plugins produce them (`Source.check_online`, `Writer.check_online`); the command only prints them. `Findings`
turns the errors a step raises into findings, so one missing field never hides the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

from .errors import BudgetExceededError, ConfigError, RetriableError, UnreachableError

# ok: there; info: worth knowing, nothing missing; fail: a run would fail on it (config, access, allowance);
# down: the system did not answer (a run would end unreachable, exit 4)
Status = Literal["ok", "info", "fail", "down"]
T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    plugin: str  # the source or target name
    check: str  # what was checked: "login", "api version", "field Lead.Email", "campaign Renewal 2027"
    status: Status
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Findings(list[Finding]):
    """The findings of one plugin, in the order they were checked."""

    def __init__(self, plugin: str) -> None:
        super().__init__()
        self.plugin = plugin

    def add(self, check: str, status: Status, detail: str) -> None:
        self.append(Finding(self.plugin, check, status, detail))

    def ok(self, check: str, detail: str) -> None:
        self.add(check, "ok", detail)

    def info(self, check: str, detail: str) -> None:
        self.add(check, "info", detail)

    def fail(self, check: str, detail: str) -> None:
        self.add(check, "fail", detail)

    def attempt(self, check: str, step: Callable[[], T]) -> T | None:
        """`step()`, or None with a finding saying why it could not be done."""
        try:
            return step()
        except (UnreachableError, RetriableError) as exc:
            self.add(check, "down", str(exc))
        except (ConfigError, BudgetExceededError) as exc:
            self.fail(check, str(exc))
        return None

    @property
    def failed(self) -> bool:
        return any(f.status in ("fail", "down") for f in self)


def offline_findings(plugin: str, check: Callable[[], None]) -> Findings:
    """The offline self-check (`validate`'s) as findings: what plugins without a system to ask report."""
    found = Findings(plugin)
    if found.attempt("config", check) is None and not found:
        found.ok("config", "checked offline")
    return found
