"""SOQL text built from values: escaping of literals and checks of identifiers.

Every value that reaches a query passes through `literal`, so a `'` or `\\` in an e-mail address or a
campaign name can never end a string early. Object and field names cannot be escaped, so they are checked:
first against a strict pattern here, then against the org's own describe by the source.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from ...errors import ConfigError

# API names: letters, digits and single underscores, optional namespace prefix and __c/__r style suffix;
# dotted paths for parent fields (Account.Name).
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def escape(text: str) -> str:
    """Escape a string for use inside a single-quoted SOQL literal (backslash first, then quote)."""
    return (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )


def datetime_literal(value: dt.datetime) -> str:
    """A SOQL datetime literal in UTC (`2026-01-31T10:00:00Z`); naive datetimes are refused."""
    if value.tzinfo is None:
        raise ValueError("SOQL datetimes must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def literal(value: Any) -> str:
    """Render one value as a SOQL literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return datetime_literal(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return f"'{escape(str(value))}'"


def in_list(values: Iterable[Any]) -> str:
    """`('a','b')` for an IN clause; the caller keeps the list non-empty."""
    items = [literal(v) for v in values]
    if not items:
        raise ValueError("an IN list needs at least one value")
    return "(" + ",".join(items) + ")"


def identifier(name: str) -> str:
    """`name` when it is a plausible API name (object or field, dotted for parents); else ConfigError."""
    parts = name.split(".")
    if not all(_IDENT.match(p) and "___" not in p for p in parts) or len(parts) > 5:
        raise ConfigError(f"'{name}' is not a valid Salesforce API name")
    return name


def record_id(value: str) -> str:
    """Return `value` when it looks like a 15/18 character record id, else ValueError."""
    if not _RECORD_ID.match(value):
        raise ValueError(f"'{value}' is not a Salesforce record id")
    return value


def looks_like_id(value: str, prefix: str | None = None) -> bool:
    return bool(_RECORD_ID.match(value)) and (prefix is None or value.startswith(prefix))


# Words that end a WHERE clause and start another one: at the condition's own level (outside parentheses, where
# a semi-join's sub-SELECT lives) they would change what the query around the condition does.
_CLAUSE_WORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "ORDER", "GROUP", "HAVING", "LIMIT", "OFFSET", "FOR", "WITH", "UPDATE"}
)


def condition(text: str) -> str:
    """`text` when it can stand as one SOQL condition inside `(...)` ANDed to connector's own bounds.

    Only the shape is checked here (quotes closed, parentheses balanced and never closing the enclosing one,
    no `;` and no clause of its own such as ORDER BY or LIMIT); fields and operators are checked by the org
    itself before a read. Raises ConfigError saying what is wrong."""
    if not text.strip():
        raise ConfigError("the condition is empty")
    depth = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            i += 1
            while i < len(text) and text[i] != "'":
                i += 2 if text[i] == "\\" else 1
            if i >= len(text):
                raise ConfigError("a quoted value is never closed")
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                # `A) OR (B` would escape the parentheses it is put in and undo connector's bounds
                raise ConfigError("a ')' closes a parenthesis the condition did not open")
        elif char in ';"`':
            raise ConfigError(f"'{char}' has no place in a SOQL condition")
        elif char.isalpha() or char == "_":
            end = i
            while end < len(text) and (text[end].isalnum() or text[end] in "_.:"):
                end += 1
            word = text[i:end]
            if depth == 0 and word.upper() in _CLAUSE_WORDS:
                raise ConfigError(f"'{word}' starts a clause of its own; give only the condition")
            i = end
            continue
        i += 1
    if depth:
        raise ConfigError("a '(' is never closed")
    return text
