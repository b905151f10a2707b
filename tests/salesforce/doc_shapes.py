"""Compare an answer with a documented Salesforce example by shape, not by value.

Documented examples come from other orgs, so ids, times, counts and host names differ by nature; what must
agree is the status, the keys and value types at every level, the error and state codes, and the *form* of
ids (15/18 characters), datetimes (`2018-12-10T17:50:19.000+0000`), URLs and paths (same segments, ids and
versions in the same places). Each helper returns a list of readable mismatches (empty = same shape).
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime
from typing import Any

# Values that name a state or a code: these must be equal, not merely of the same type.
VALUE_KEYS = frozenset(
    {
        "errorCode",
        "statusCode",
        "error",
        "success",
        "done",
        "state",
        "operation",
        "object",
        "type",
        "jobType",
        "contentType",
        "concurrencyMode",
        "lineEnding",
        "columnDelimiter",
        "token_type",
        "passwordExpired",
    }
)
# Opaque secrets and free text that only need to be strings.
FREE_KEYS = frozenset({"access_token", "signature", "sessionId", "Name", "FirstName", "LastName"})

ID_RE = re.compile(r"^[a-zA-Z0-9]{18}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
# Pieces of a documented string that vary between orgs, each replaced by the pattern of its form.
_VARYING = re.compile(
    r"(?P<host>https://[A-Za-z0-9.-]+(?::\d+)?)"
    r"|(?P<version>v\d+\.\d)"
    r"|(?P<id18>(?<![A-Za-z0-9])[A-Za-z0-9]{18}(?![A-Za-z0-9]))"
    r"|(?P<id15>(?<![A-Za-z0-9])[A-Za-z0-9]{15}(?![A-Za-z0-9]))"
    r"|(?P<number>\d+(?:\.\d+)?)"
)
_FORMS = {
    "host": r"https://[A-Za-z0-9.-]+(?::\d+)?",
    "version": r"v\d+\.\d",
    "id18": r"[A-Za-z0-9]{18}",
    "id15": r"[A-Za-z0-9]{15}",
    "number": r"\d+(?:\.\d+)?",
}


def template(documented: str) -> re.Pattern[str]:
    """A pattern that any string of the same form as `documented` matches (ids, versions, hosts, numbers)."""
    parts: list[str] = []
    last = 0
    for m in _VARYING.finditer(documented):
        parts.append(re.escape(documented[last : m.start()]))
        parts.append(_FORMS[str(m.lastgroup)])
        last = m.end()
    parts.append(re.escape(documented[last:]))
    return re.compile("^" + "".join(parts) + "$")


def json_mismatches(
    documented: Any, actual: Any, path: str = "body", *, key: str = "", free: frozenset[str] = frozenset()
) -> list[str]:
    """Every place where `actual` differs in shape from the `documented` JSON value."""
    if documented is None:
        return [] if actual is None else [f"{path}: {actual!r}, documented null"]
    if isinstance(documented, bool) or isinstance(actual, bool):
        if not (isinstance(documented, bool) and isinstance(actual, bool)):
            return [f"{path}: {_kind(actual)}, documented {_kind(documented)}"]
        if key in VALUE_KEYS and documented != actual:
            return [f"{path}: {actual!r}, documented {documented!r}"]
        return []
    if type(documented) is not type(actual):
        return [f"{path}: {_kind(actual)}, documented {_kind(documented)}"]
    if isinstance(documented, dict):
        missing = sorted(set(documented) - set(actual))
        extra = sorted(set(actual) - set(documented))
        if missing or extra:
            return [f"{path}: keys missing {missing}, extra {extra}"]
        out: list[str] = []
        for name, value in documented.items():
            out += json_mismatches(value, actual[name], f"{path}.{name}", key=name, free=free)
        return out
    if isinstance(documented, list):
        return _list_mismatches(documented, actual, path, key, free)
    if isinstance(documented, str):
        return _string_mismatches(documented, actual, path, key, free)
    return []  # numbers: the type is the shape; counts and sizes differ by org


def _list_mismatches(
    documented: list[Any], actual: list[Any], path: str, key: str, free: frozenset[str]
) -> list[str]:
    if not documented or not actual:
        if bool(documented) != bool(actual):
            return [f"{path}: {len(actual)} items, documented {len(documented)}"]
        return []
    if len(documented) == len(actual):  # per-record results: position matters (create/update/delete)
        out: list[str] = []
        for n, (doc, act) in enumerate(zip(documented, actual, strict=True)):
            out += json_mismatches(doc, act, f"{path}[{n}]", key=key, free=free)
        return out
    # a page of records: the documentation shows a few, the org returns as many as it holds
    for n, item in enumerate(actual):
        tries = [json_mismatches(doc, item, f"{path}[{n}]", key=key, free=free) for doc in documented]
        if all(tries):
            return tries[0]
    return []


def _string_mismatches(documented: str, actual: str, path: str, key: str, free: frozenset[str]) -> list[str]:
    if key in FREE_KEYS or key in free:
        return []
    if key in VALUE_KEYS:
        return [] if documented == actual else [f"{path}: {actual!r}, documented {documented!r}"]
    if documented in ("true", "false"):  # an XML boolean
        return [] if actual in ("true", "false") else [f"{path}: {actual!r} is not a boolean"]
    if DATETIME_RE.match(documented):
        return (
            [] if DATETIME_RE.match(actual) else [f"{path}: {actual!r} is not a datetime like {documented!r}"]
        )
    if ID_RE.match(documented):
        return [] if ID_RE.match(actual) else [f"{path}: {actual!r} is not an 18-character id"]
    if template(documented).match(actual):
        return []
    return [f"{path}: {actual!r} does not have the form of {documented!r}"]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# ----- headers, CSV and XML bodies ------------------------------------------------------------------------
def header_mismatches(documented: dict[str, str], actual: dict[str, str]) -> list[str]:
    lowered = {k.lower(): v for k, v in actual.items()}
    out: list[str] = []
    for name, value in documented.items():
        got = lowered.get(name.lower())
        if got is None:
            out.append(f"header {name}: missing")
        elif name.lower() == "date":
            try:
                parsed = parsedate_to_datetime(got)
            except (TypeError, ValueError):
                parsed = None
            if parsed is None or parsed.utcoffset() is None or not got.endswith("GMT"):
                out.append(f"header Date: {got!r} is not an HTTP date in GMT")
        elif name.lower() == "content-type":
            if _media(got) != _media(value):
                out.append(f"header Content-Type: {got!r}, documented {value!r}")
        elif not template(value).match(got):
            out.append(f"header {name}: {got!r} does not have the form of {value!r}")
    return out


def _media(value: str) -> tuple[str, ...]:
    return tuple(sorted(p.strip().lower() for p in value.split(";") if p.strip()))


def csv_mismatches(documented: str, actual: str) -> list[str]:
    """Same header row; every row as wide as the header, each cell of its documented column's form."""
    doc_rows = list(csv.reader(io.StringIO(documented)))
    act_rows = list(csv.reader(io.StringIO(actual)))
    if not act_rows:
        return ["body: empty CSV"]
    if act_rows[0] != doc_rows[0]:
        return [f"CSV header {act_rows[0]}, documented {doc_rows[0]}"]
    out: list[str] = []
    for n, row in enumerate(act_rows[1:], start=1):
        if len(row) != len(doc_rows[0]):
            out.append(f"CSV row {n}: {len(row)} cells for {len(doc_rows[0])} columns")
            continue
        for column, cell, example in zip(doc_rows[0], row, doc_rows[1], strict=True):
            if ID_RE.match(example) and not ID_RE.match(cell):
                out.append(f"CSV row {n} {column}: {cell!r} is not an 18-character id")
    if bool(act_rows[1:]) != bool(doc_rows[1:]):
        out.append(f"CSV: {len(act_rows) - 1} rows, documented {len(doc_rows) - 1}")
    return out


def xml_mismatches(documented: str, actual: str) -> list[str]:
    """Same element names (namespaces included) in the same order; leaf texts of the documented form.

    A documented element written empty (`<userInfo/>`) stands for "present, contents not compared".
    """
    try:
        act = ET.fromstring(actual)
    except ET.ParseError as exc:
        return [f"body: not XML ({exc})"]
    return _element_mismatches(ET.fromstring(documented), act, "")


def _element_mismatches(doc: ET.Element, act: ET.Element, path: str) -> list[str]:
    here = f"{path}/{_local(doc.tag)}"
    if doc.tag != act.tag:
        return [f"{here}: element {act.tag}, documented {doc.tag}"]
    doc_children, act_children = list(doc), list(act)
    if not doc_children and not (doc.text or "").strip():
        return []
    if doc_children:
        if [c.tag for c in doc_children] != [c.tag for c in act_children]:
            return [
                f"{here}: children {[_local(c.tag) for c in act_children]}, "
                f"documented {[_local(c.tag) for c in doc_children]}"
            ]
        out: list[str] = []
        for d, a in zip(doc_children, act_children, strict=True):
            out += _element_mismatches(d, a, here)
        return out
    name = _local(doc.tag)
    return [
        m.replace("body", here, 1)
        for m in _string_mismatches(
            (doc.text or "").strip(), (act.text or "").strip(), "body", name, frozenset()
        )
    ]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
