"""VTQL building: quoting, identifier checks, and the `;` rule.

VTQL is not SQL and the server is picky:
- inside a quoted value both `'` and `\\` are doubled (so a value can never end the literal early);
- `query` needs a trailing `;`; `query_related` must NOT have one (it answers UNKOWN_ENTITY), and its `WHERE`,
  `ORDER BY` and `LIMIT` are split case-sensitively, so they are written in upper case there;
- at most 100 rows come back per query whatever the `limit`, so paging is `limit offset, 100` over a stable
  `order by` of a single column (the one ordering every install accepts);
- `''` and `is null` are rejected, so "field is empty" cannot be asked for: callers filter client-side;
- vtiger pastes a literal into its SQL as written, so a `like` pattern is MySQL's: `%` and `_` are wildcards
  and `\\` escapes the next character (a value's own `\\`, `%` and `_` need `like_contains`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

PAGE_SIZE = 100
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RECORD_ID = re.compile(r"^\d+x\d+$")
OPERATORS = frozenset({"=", "!=", "<", ">", "<=", ">=", "like", "in"})
# the always-true filter query_related needs to accept ORDER BY/LIMIT (vtiger dates start after 1970-01-01)
ALWAYS_TRUE = ("createdtime", ">", "1970-01-02 00:00:00")


class VtqlError(ValueError):
    """A query would be built from an identifier or operator that is not allowed."""


def quote(value: str) -> str:
    """A VTQL string literal: `'` and `\\` doubled. Empty literals are refused by the server, so by us."""
    if value == "":
        raise VtqlError("vtiger rejects an empty string literal ('')")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def like_contains(value: str) -> str:
    """A `like` pattern for "holds `value` anywhere", the value's `\\`, `%` and `_` escaped for MySQL's LIKE.

    Quoting (`quote`) then doubles the `\\` again for the literal. Unescaped, `\\` would escape the next
    character (`%Sales\\EMEA%` matches `SalesEMEA`, not `Sales\\EMEA`) and the value would be missed.
    """
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def check_ident(name: str, known: Collection[str] | None = None, *, what: str = "field") -> str:
    if not IDENT.match(name):
        raise VtqlError(f"'{name}' is not a valid vtiger {what} name")
    if known is not None and name != "id" and name not in known:
        raise VtqlError(f"'{name}' is not a {what} vtiger describes (known: {', '.join(sorted(known))})")
    return name


def crmid(record_id: str) -> int:
    """The number after the module prefix (`10x42` -> 42): ids sort, and `id > '10x42'` compares, by it."""
    try:
        return int(record_id.partition("x")[2])
    except ValueError:
        return -1


def format_time(value: dt.datetime) -> str:
    """A vtiger datetime literal (UTC, whole seconds)."""
    if value.tzinfo is None:
        raise ValueError("vtiger times must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(raw: str) -> dt.datetime:
    return dt.datetime.strptime(raw.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Cond:
    field: str
    op: str
    value: str | Sequence[str]


def _where(conds: Iterable[Cond], known: Collection[str] | None) -> str:
    parts = []
    for cond in conds:
        op = cond.op.lower()
        if op not in OPERATORS:
            raise VtqlError(f"operator '{cond.op}' is not allowed")
        field = check_ident(cond.field, known)
        if op == "in":
            values = [cond.value] if isinstance(cond.value, str) else list(cond.value)
            if not values:
                raise VtqlError("'in' needs at least one value")
            parts.append(f"{field} in ({','.join(quote(v) for v in values)})")
        else:
            if not isinstance(cond.value, str):
                raise VtqlError(f"operator '{op}' takes one value")
            parts.append(f"{field} {op} {quote(cond.value)}")
    return " and ".join(parts)


def select(
    module: str,
    columns: Sequence[str],
    *,
    where: Sequence[Cond] = (),
    order_by: str | None = None,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    known: Collection[str] | None = None,
) -> str:
    """`select … from Module [where …] [order by col] limit off, n;` for the `query` operation."""
    check_ident(module, what="module")
    cols = ", ".join(check_ident(c, known) for c in columns) if columns else "*"
    text = f"select {cols} from {module}"
    if where:
        text += " where " + _where(where, known)
    if order_by:
        text += f" order by {check_ident(order_by, known)}"
    text += f" limit {int(offset)}, {min(int(limit), PAGE_SIZE)};"
    return text


def select_related(
    module: str,
    columns: Sequence[str],
    *,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    known: Collection[str] | None = None,
) -> str:
    """A paged `query_related` query: upper-case keywords, an always-true WHERE, ORDER BY id, no `;`."""
    check_ident(module, what="module")
    cols = ", ".join(check_ident(c, known) for c in columns) if columns else "*"
    field, op, value = ALWAYS_TRUE
    return (
        f"SELECT {cols} FROM {module} WHERE {field} {op} {quote(value)} "
        f"ORDER BY id LIMIT {int(offset)},{min(int(limit), PAGE_SIZE)}"
    )
