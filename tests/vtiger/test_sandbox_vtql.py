"""The sandbox's VTQL subset: parsing, recorded error messages, filtering, ordering and the 100-row cap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector_sandboxes.vtiger import VtigerSandbox
from connector_sandboxes.vtiger.vtql import Comparison, Junction, QuerySyntaxError, parse

from .conftest import WsClient


def test_parse_full_statement() -> None:
    q = parse(
        "select id, lastname from Leads where (leadstatus = 'Hot' or leadstatus in ('Warm','Cold')) "
        "and email like '%@x.nl' order by modifiedtime desc, id limit 10, 20;"
    )
    assert q.module == "Leads" and q.columns == ["id", "lastname"]
    assert q.order == [("modifiedtime", True), ("id", False)]
    assert (q.offset, q.limit) == (10, 20)
    assert isinstance(q.where, Junction) and q.where.op == "and"
    assert isinstance(q.where.left, Junction) and q.where.left.op == "or"
    assert q.where.right == Comparison("email", "LIKE", "%@x.nl")


def test_doubled_quote_and_backslash_inside_values() -> None:
    q = parse(r"select id from Leads where lastname = 'O''Neill' and description = 'a\\b';")
    assert isinstance(q.where, Junction)
    assert q.where.left == Comparison("lastname", "EQ", "O'Neill")
    assert q.where.right == Comparison("description", "EQ", "a\\b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "select * from Leads",
            "Syntax Error on line 1: token 'Leads' Unexpected End of Input(0), expected one of: SEMICOLON",
        ),
        (
            "selec * from Leads;",
            "Syntax Error on line 1: token 'selec' Unexpected Unknown(selec), expected one of: SELECT",
        ),
        (
            "select id from Leads where cf_853 is null limit 0, 5;",
            "Syntax Error on line 1: token 'is' Unexpected VALUE(is), expected one of: EQ,LT,GT,LTE,GTE,NE,IN,LIKE",
        ),
    ],
)
def test_recorded_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text)
    assert caught.value.message == message
    assert caught.value.code == "QUERY_SYNTAX_ERROR"


def _people(sb: VtigerSandbox) -> None:
    rows = [
        ("Ann", "Smith", "ann@example.com", "Hot", "100"),
        ("Bob", "O'Neill", "bob@example.com", "Warm", "20"),
        ("Cas", "smith", "cas@example.org", "Cold", "3"),
        ("Dee", "Back\\slash", "dee@example.org", "Hot", ""),
    ]
    for first, last, email, status, employees in rows:
        sb.store.create(
            "Leads",
            {
                "firstname": first,
                "lastname": last,
                "email": email,
                "leadstatus": status,
                "noofemployees": employees,
            },
        )


def test_filters_over_http(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    _people(vt_sandbox)

    def names(where: str) -> list[str]:
        rows = vt_client.query(f"select firstname from Leads where {where} order by firstname;")
        return [r["firstname"] for r in rows]

    # MySQL's case-insensitive collation: 'smith' matches 'Smith'
    assert names("lastname = 'SMITH'") == ["Ann", "Cas"]
    assert names("lastname = 'O''Neill'") == ["Bob"]
    assert names("lastname = 'Back\\\\slash'") == ["Dee"]
    assert names("email like '%.org'") == ["Cas", "Dee"]
    assert names("leadstatus in ('Hot','Cold')") == ["Ann", "Cas", "Dee"]
    assert names("leadstatus != 'Hot'") == ["Bob", "Cas"]
    assert names("(leadstatus = 'Hot' or leadstatus = 'Warm') and email like 'a%'") == ["Ann"]
    # numbers compare as numbers, not strings ("100" > "20")
    assert names("noofemployees > 10") == ["Ann", "Bob"]
    assert names("modifiedtime > '2000-01-01 00:00:00'") == ["Ann", "Bob", "Cas", "Dee"]
    desc = vt_client.query("select firstname from Leads order by noofemployees desc limit 2;")
    assert [r["firstname"] for r in desc] == ["Ann", "Bob"]
    assert vt_client.query("select count(*) from Leads where leadstatus = 'Hot';") == [{"count": "2"}]


def test_like_follows_mysql_escaping(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    for first, last in [
        ("Dee", "Back\\slash"),
        ("Eve", "Backslash"),
        ("Fay", "50% off"),
        ("Gus", "500 off"),
        ("Hal", "a_b"),
        ("Ida", "axb"),
        ("Jon", "ends\\"),
    ]:
        vt_sandbox.store.create("Leads", {"firstname": first, "lastname": last})

    def names(pattern: str) -> list[str]:
        rows = vt_client.query(
            f"select firstname from Leads where lastname like {pattern} order by firstname;"
        )
        return [r["firstname"] for r in rows]

    # the literal is MySQL's (`\\` is one backslash), then LIKE takes a backslash as "next character as is"
    assert names(r"'%k\\\\s%'") == ["Dee"]  # LIKE sees `%k\\s%`: a backslash, then s
    assert names(r"'%k\\s%'") == ["Eve"]  # LIKE sees `%k\s%`: an escaped s, no backslash
    assert names(r"'50\\%%'") == ["Fay"]  # LIKE sees `50\%%`: a percent sign, then anything
    assert names(r"'50\%%'") == ["Fay"]  # MySQL keeps `\%` in a literal as it is, for LIKE
    assert names("'50%'") == ["Fay", "Gus"]
    assert names(r"'a\\_b'") == ["Hal"]
    assert names("'a_b'") == ["Hal", "Ida"]
    assert names(r"'%s\\'") == ["Jon"]  # a backslash ending the pattern stands for itself


def test_rows_have_requested_columns_and_no_label(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    _people(vt_sandbox)
    rows = vt_client.query("select id, lastname, email from Leads limit 1;")
    assert list(rows[0]) == ["id", "lastname", "email"]
    full = vt_client.query("select * from Leads limit 1;")[0]
    assert "label" not in full and full["annualrevenue"] == "0.00000000"
    assert full[vt_sandbox.store.field_by_label("Leads", "Funnel stage")] == ""


@pytest.mark.parametrize(
    ("vtql", "code", "message"),
    [
        (
            "select * from Leads where nosuchfield = 1;",
            "ACCESS_DENIED",
            "Permission to access nosuchfield attribute denied.",
        ),
        (
            "select nosuchfield from Leads;",
            "ACCESS_DENIED",
            "Permission to access nosuchfield attribute denied.",
        ),
        (
            "select id from Leads where lastname = '';",
            "INTERNAL_SERVER_ERROR",
            "Unknown Error while processing request",
        ),
        ("select * from Leads", "QUERY_SYNTAX_ERROR", None),
    ],
)
def test_query_errors_over_http(vt_client: WsClient, vtql: str, code: str, message: str | None) -> None:
    body = vt_client.call("GET", "query", query=vtql)
    assert body["success"] is False
    assert body["error"]["code"] == code
    if message:
        assert body["error"]["message"] == message


def test_hundred_row_cap_and_paging(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    ids = [vt_sandbox.store.create("Leads", {"lastname": f"P{n:03d}"})["id"] for n in range(250)]
    assert len(vt_client.query("select id from Leads;")) == 100
    assert len(vt_client.query("select id from Leads limit 0, 200;")) == 100
    assert vt_client.query("select count(*) from Leads;") == [{"count": "250"}]
    seen: list[str] = []
    offset = 0
    while True:
        page = vt_client.query(f"select id from Leads order by id limit {offset}, 100;")
        seen += [r["id"] for r in page]
        if len(page) < 100:
            break
        offset += 100
    assert seen == ids


def test_rows_tying_on_the_order_come_in_no_fixed_order(
    vt_sandbox: VtigerSandbox, vt_client: WsClient
) -> None:
    # like MySQL: paging `order by modifiedtime limit 100,100` over one busy second may repeat or skip rows
    vt_sandbox.clock.set(datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC))
    for n in range(30):
        vt_sandbox.store.create("Leads", {"lastname": f"T{n}"})
    orders = {
        tuple(r["id"] for r in vt_client.query("select id, modifiedtime from Leads order by modifiedtime;"))
        for _ in range(3)
    }
    assert len(orders) > 1
    by_id = [r["id"] for r in vt_client.query("select id from Leads order by id;")]
    assert by_id == sorted(by_id, key=lambda i: int(i.split("x")[1]))
