"""The subset of VTQL the sandbox understands, with vtiger's own error messages.

    select * | count(*) | f1, f2 from Module [where cond] [order by f [asc|desc], ...] [limit [offset,] n];

Conditions use = != <> < > <= >= like in, combined with and/or and parentheses. The trailing `;` is
required, `''` is refused with INTERNAL_SERVER_ERROR, `is null` is a syntax error, and inside a quoted value
`''` and `\\\\` stand for `'` and `\\`. At most 100 rows come back whatever the limit says.

vtiger pastes a quoted value into its SQL as written, so from there on MySQL's rules apply: a literal's
backslash escapes (`\\n` a newline, `\\%` and `\\_` kept as they are, `\\x` otherwise `x`), and in `like` a
backslash makes the next character literal (`%` any run, `_` one character, a trailing `\\` itself).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from connector_sandboxes.vtiger.wserrors import WebserviceError, no_such_module

if TYPE_CHECKING:
    from connector_sandboxes.vtiger.store import Record, VtigerStore

MAX_ROWS = 100
_TIE_SALT = itertools.count(1)

KEYWORDS = {
    "select": "SELECT",
    "from": "FRM",
    "where": "WHERE",
    "and": "LOGICAL_AND",
    "or": "LOGICAL_OR",
    "in": "IN",
    "like": "LIKE",
    "asc": "ASC",
    "desc": "DESC",
    "limit": "LIMIT",
    "count": "COUNT",
}
SYMBOLS = {
    "<=": "LTE",
    ">=": "GTE",
    "!=": "NE",
    "<>": "NE",
    "=": "EQ",
    "<": "LT",
    ">": "GT",
    "*": "ASTERISK",
    ",": "COMMA",
    "(": "PARENOPEN",
    ")": "PARENCLOSE",
    ";": "SEMICOLON",
}
COMPARISONS = ("EQ", "LT", "GT", "LTE", "GTE", "NE", "IN", "LIKE")
WORD = re.compile(r"[A-Za-z0-9_.:\-+]+")


@dataclass(frozen=True)
class Token:
    kind: str  # keyword/symbol name, WORD, QUOTED or EOF
    text: str


@dataclass(frozen=True)
class Comparison:
    column: str
    op: str
    value: str | tuple[str, ...]


@dataclass(frozen=True)
class Junction:
    op: str  # "and" | "or"
    left: Condition
    right: Condition


Condition = Union[Comparison, Junction]  # noqa: UP007 - a runtime alias; `|` on a forward ref would fail


@dataclass
class Query:
    module: str
    columns: list[str] | None  # None means `*`
    count: bool = False
    where: Condition | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    offset: int = 0
    limit: int | None = None


class QuerySyntaxError(WebserviceError):
    def __init__(self, message: str) -> None:
        super().__init__("QUERY_SYNTAX_ERROR", message)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "'\"":
            value, i = _quoted(text, i)
            tokens.append(Token("QUOTED", value))
            continue
        two = text[i : i + 2]
        if two in SYMBOLS:
            tokens.append(Token(SYMBOLS[two], two))
            i += 2
            continue
        if ch in SYMBOLS:
            tokens.append(Token(SYMBOLS[ch], ch))
            i += 1
            continue
        match = WORD.match(text, i)
        if not match:
            tokens.append(Token("WORD", ch))
            i += 1
            continue
        word = match.group(0)
        i = match.end()
        lowered = word.lower()
        if lowered == "order":
            rest = re.match(r"\s+by\b", text[i:], re.IGNORECASE)
            if rest:
                tokens.append(Token("ORDERBY", word + rest.group(0)))
                i += rest.end()
                continue
        tokens.append(Token(KEYWORDS.get(lowered, "WORD"), word))
    return tokens


# MySQL string literal escapes; `\\%` and `\\_` stay two characters so that `like` can still see them escaped
MYSQL_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "%": "\\%", "_": "\\_"}


def _quoted(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(MYSQL_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if ch == quote:
            if text[i + 1 : i + 2] == quote:  # doubled quote stands for one
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise QuerySyntaxError(f"Syntax Error on line 1: token '{text[start:]}' Unexpected Unknown({quote})")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else Token("EOF", "")

    def take(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, expected: str) -> QuerySyntaxError:
        token = self.peek()
        if token.kind == "EOF":
            last = self.tokens[-1].text if self.tokens else ""
            return QuerySyntaxError(
                f"Syntax Error on line 1: token '{last}' Unexpected End of Input(0), expected one of: {expected}"
            )
        if token.kind == "WORD":
            kind = "Unknown" if self.pos == 0 else "VALUE"
        elif token.kind == "QUOTED":
            kind = "VALUE"
        else:
            kind = token.kind
        return QuerySyntaxError(
            f"Syntax Error on line 1: token '{token.text}' Unexpected {kind}({token.text}), "
            f"expected one of: {expected}"
        )

    def expect(self, kind: str, expected: str | None = None) -> Token:
        if self.peek().kind != kind:
            raise self.fail(expected or kind)
        return self.take()

    def column(self, expected: str = "COLUMNNAME") -> str:
        return self.expect("WORD", expected).text

    def parse(self) -> Query:
        self.expect("SELECT")
        columns: list[str] | None
        count = False
        if self.peek().kind == "ASTERISK":
            self.take()
            columns = None
        elif self.peek().kind == "COUNT":
            self.take()
            self.expect("PARENOPEN")
            self.expect("ASTERISK")
            self.expect("PARENCLOSE")
            columns, count = None, True
        else:
            columns = [self.column("COLUMNNAME,ASTERISK,COUNT")]
            while self.peek().kind == "COMMA":
                self.take()
                columns.append(self.column())
        self.expect("FRM", "COMMA,FRM" if columns else "FRM")
        query = Query(module=self.expect("WORD", "TABLENAME").text, columns=columns, count=count)
        if self.peek().kind == "WHERE":
            self.take()
            query.where = self.disjunction()
        if self.peek().kind == "ORDERBY":
            self.take()
            query.order.append(self.order_item())
            while self.peek().kind == "COMMA":
                self.take()
                query.order.append(self.order_item())
        if self.peek().kind == "LIMIT":
            self.take()
            first = self.number()
            if self.peek().kind == "COMMA":
                self.take()
                query.offset, query.limit = first, self.number()
            else:
                query.limit = first
        tail = "SEMICOLON" if self.peek().kind == "EOF" else "LOGICAL_AND,LOGICAL_OR,ORDERBY,LIMIT,SEMICOLON"
        self.expect("SEMICOLON", tail)
        if self.peek().kind != "EOF":
            raise self.fail("End of Input")
        return query

    def number(self) -> int:
        token = self.peek()
        if token.kind not in ("WORD", "QUOTED") or not token.text.strip().isdigit():
            raise self.fail("VALUE")
        self.take()
        return int(token.text)

    def order_item(self) -> tuple[str, bool]:
        name = self.column()
        descending = False
        if self.peek().kind in ("ASC", "DESC"):
            descending = self.take().kind == "DESC"
        return name, descending

    def disjunction(self) -> Condition:
        node = self.conjunction()
        while self.peek().kind == "LOGICAL_OR":
            self.take()
            node = Junction("or", node, self.conjunction())
        return node

    def conjunction(self) -> Condition:
        node = self.atom()
        while self.peek().kind == "LOGICAL_AND":
            self.take()
            node = Junction("and", node, self.atom())
        return node

    def atom(self) -> Condition:
        if self.peek().kind == "PARENOPEN":
            self.take()
            node = self.disjunction()
            self.expect("PARENCLOSE", "LOGICAL_AND,LOGICAL_OR,PARENCLOSE")
            return node
        name = self.column("COLUMNNAME,PARENOPEN")
        op = self.peek().kind
        if op not in COMPARISONS:
            raise self.fail(",".join(COMPARISONS))
        self.take()
        if op == "IN":
            self.expect("PARENOPEN")
            values = [self.value()]
            while self.peek().kind == "COMMA":
                self.take()
                values.append(self.value())
            self.expect("PARENCLOSE", "COMMA,PARENCLOSE")
            return Comparison(name, op, tuple(values))
        return Comparison(name, op, self.value())

    def value(self) -> str:
        token = self.peek()
        if token.kind not in ("QUOTED", "WORD"):
            raise self.fail("VALUE")
        self.take()
        return token.text


def parse(text: str) -> Query:
    return _Parser(text).parse()


# ---- evaluation ---------------------------------------------------------------------------------------
def execute(query: Query, store: VtigerStore, only_ids: set[str] | None = None) -> list[dict[str, str]]:
    """Run a parsed query against the store (caller holds store.lock); `only_ids` narrows the rows."""
    meta = store.modules.get(query.module)
    if meta is None:
        raise no_such_module(query.module)
    known = set(meta.field_names())
    for name in [*(query.columns or []), *_columns(query.where), *(c for c, _ in query.order)]:
        if name not in known:
            raise WebserviceError("ACCESS_DENIED", f"Permission to access {name} attribute denied.")
    if _has_empty_literal(query.where):
        raise WebserviceError("INTERNAL_SERVER_ERROR", "Unknown Error while processing request")
    rows = store.records(query.module)
    if only_ids is not None:
        rows = [r for r in rows if r.id in only_ids]
    if query.where is not None:
        where = query.where
        rows = [r for r in rows if _matches(where, r, store)]
    if query.count:
        return [{"count": str(len(rows))}]
    if query.order:
        # MySQL leaves rows that tie on the ORDER BY columns in no particular order, and not always the same
        # one from one query to the next: shuffle them so a client that pages over ties shows its bugs here
        salt = next(_TIE_SALT)
        rows.sort(key=lambda r: hash((r.crmid, salt)))
    for name, descending in reversed(query.order):
        rows.sort(key=lambda r, n=name: _sort_key(r, n, store), reverse=descending)  # type: ignore[misc]
    size = MAX_ROWS if query.limit is None else min(query.limit, MAX_ROWS)
    rows = rows[query.offset : query.offset + size]
    if query.columns is None:
        return [dict(r.values) for r in rows]
    columns = query.columns
    return [{name: r.values.get(name, "") for name in columns} for r in rows]


def _columns(node: Condition | None) -> list[str]:
    if node is None:
        return []
    if isinstance(node, Junction):
        return _columns(node.left) + _columns(node.right)
    return [node.column]


def _has_empty_literal(node: Condition | None) -> bool:
    if node is None:
        return False
    if isinstance(node, Junction):
        return _has_empty_literal(node.left) or _has_empty_literal(node.right)
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    return any(v == "" for v in values)


def _matches(node: Condition, record: Record, store: VtigerStore) -> bool:
    if isinstance(node, Junction):
        if node.op == "and":
            return _matches(node.left, record, store) and _matches(node.right, record, store)
        return _matches(node.left, record, store) or _matches(node.right, record, store)
    stored = _typed(record, node.column, record.values.get(node.column, ""), store)
    if node.op == "IN":
        assert isinstance(node.value, tuple)
        return any(stored == _typed(record, node.column, v, store) for v in node.value)
    assert isinstance(node.value, str)
    if node.op == "LIKE":
        return _like(node.value).fullmatch(record.values.get(node.column, "")) is not None
    literal = _typed(record, node.column, node.value, store)
    if type(stored) is not type(literal):
        stored, literal = str(stored), str(literal)
    if node.op == "EQ":
        return stored == literal
    if node.op == "NE":
        return stored != literal
    if node.op == "LT":
        return stored < literal  # type: ignore[operator]
    if node.op == "GT":
        return stored > literal  # type: ignore[operator]
    if node.op == "LTE":
        return stored <= literal  # type: ignore[operator]
    return stored >= literal  # type: ignore[operator]


def _typed(record: Record, column: str, text: str, store: VtigerStore) -> float | str:
    """A comparable form: ids by crmid, numeric columns as numbers, text case-insensitively (MySQL ci)."""
    if column == "id":
        crmid = text.split("x", 1)[1] if "x" in text else text
        try:
            return float(crmid)
        except ValueError:
            return text.casefold()
    spec = store.modules[record.module].field(column)
    if spec is not None and spec.numeric:
        try:
            return float(text) if text.strip() else 0.0
        except ValueError:
            return text.casefold()
    return text.casefold().rstrip(" ")


def _sort_key(record: Record, column: str, store: VtigerStore) -> tuple[int, float | str]:
    value = _typed(record, column, record.values.get(column, ""), store)
    return (0, value) if isinstance(value, float) else (1, value)


def _like(pattern: str) -> re.Pattern[str]:
    """MySQL's LIKE with its default escape character `\\` (a `\\` ending the pattern stands for itself)."""
    parts = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)
