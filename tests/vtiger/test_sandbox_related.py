"""Campaign relations: add_related both ways, retrieve_related's silent 100 cap, query_related paging."""

from __future__ import annotations

from connector_sandboxes.vtiger import VtigerSandbox

from .conftest import WsClient

WRONG = {"message": "Relation specified is incorrect", "code": "UNKOWN_ENTITY"}


def _campaign(sb: VtigerSandbox, name: str = "Nurture newsletter") -> str:
    return sb.store.create("Campaigns", {"campaignname": name, "closingdate": "2027-12-31"})["id"]


def test_add_related_both_ways(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    campaign = _campaign(vt_sandbox)
    a = vt_sandbox.store.create("Leads", {"lastname": "A"})["id"]
    b = vt_sandbox.store.create("Leads", {"lastname": "B"})["id"]
    c = vt_sandbox.store.create("Contacts", {"lastname": "C"})["id"]
    ok = {"message": "successfull"}
    assert (
        vt_client.post("add_related", sourceRecordId=campaign, relatedRecordId=a, relationIdLabel="Leads")
        == ok
    )
    assert (
        vt_client.post("add_related", sourceRecordId=campaign, relatedRecordId=a, relationIdLabel="Leads")
        == ok
    )
    assert vt_client.post("add_related", sourceRecordId=campaign, relatedRecordId=c) == ok
    assert (
        vt_client.post("add_related", sourceRecordId=b, relatedRecordId=campaign, relationIdLabel="Campaigns")
        == ok
    )
    assert vt_sandbox.store.related(campaign, "Leads") == [a, b]
    assert vt_sandbox.store.related(campaign, "Contacts") == [c]
    rows = vt_client.get("retrieve_related", id=campaign, relatedType="Leads", relatedLabel="Leads")
    assert [r["id"] for r in rows] == [a, b] and "label" not in rows[0]
    back = vt_client.get("retrieve_related", id=a, relatedType="Campaigns", relatedLabel="Campaigns")
    assert [r["id"] for r in back] == [campaign]
    bad = vt_client.call(
        "GET", "retrieve_related", id=campaign, relatedType="Leads", relatedLabel="NoSuchLabel"
    )
    assert bad["error"] == WRONG


def test_query_related_rules(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    campaign = _campaign(vt_sandbox)
    warm = vt_sandbox.store.create("Leads", {"lastname": "Warm", "leadstatus": "Warm"})["id"]
    cold = vt_sandbox.store.create("Leads", {"lastname": "Cold", "leadstatus": "Cold"})["id"]
    vt_sandbox.store.create("Leads", {"lastname": "Unrelated", "leadstatus": "Warm"})
    for lead in (warm, cold):
        vt_sandbox.store.relate(campaign, lead)

    def related(query: str, label: str = "Leads") -> dict:
        return vt_client.call("GET", "query_related", id=campaign, relatedLabel=label, query=query)

    assert related("select id, lastname from Leads")["result"] == [
        {"id": warm, "lastname": "Warm"},
        {"id": cold, "lastname": "Cold"},
    ]
    assert related("select id from Leads WHERE leadstatus = 'Warm'")["result"] == [{"id": warm}]
    assert related("select id from Leads;")["error"] == WRONG  # the trailing ; is refused here
    assert related("select id from Leads where leadstatus = 'Warm'")["error"] == WRONG  # lower-case where
    assert related("select id from Leads ORDER BY id LIMIT 0,1")["error"] == WRONG  # needs a WHERE first
    assert related("select id from Leads", label="Nope")["error"] == WRONG


def test_related_paging_beyond_100(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    campaign = _campaign(vt_sandbox)
    members = []
    for n in range(230):
        lead = vt_sandbox.store.create("Leads", {"lastname": f"M{n}", "email": f"m{n}@x.nl"})["id"]
        vt_sandbox.store.relate(campaign, lead)
        members.append(lead)
    capped = vt_client.get("retrieve_related", id=campaign, relatedType="Leads", relatedLabel="Leads")
    assert len(capped) == 100  # silently stops
    assert (
        len(vt_client.get("query_related", id=campaign, relatedLabel="Leads", query="select id from Leads"))
        == 100
    )
    seen: list[str] = []
    offset = 0
    while True:
        page = vt_client.get(
            "query_related",
            id=campaign,
            relatedLabel="Leads",
            query=f"SELECT id FROM Leads WHERE createdtime > '1970-01-02 00:00:00' ORDER BY id LIMIT {offset},100",
        )
        seen += [r["id"] for r in page]
        if len(page) < 100:
            break
        offset += 100
    assert seen == members
    types = vt_client.get("relatedtypes", elementType="Campaigns")
    assert types["types"] == ["Contacts", "Leads", "Potentials", "Calendar", "Accounts"]


def test_potentials_link_through_campaignid(vt_sandbox: VtigerSandbox, vt_client: WsClient) -> None:
    campaign = _campaign(vt_sandbox)
    deal = vt_sandbox.store.create(
        "Potentials",
        {
            "potentialname": "Deal",
            "closingdate": "2026-12-31",
            "sales_stage": "Prospecting",
            "campaignid": campaign,
        },
    )["id"]
    rows = vt_client.get("retrieve_related", id=campaign, relatedType="Potentials", relatedLabel="Potentials")
    assert [r["id"] for r in rows] == [deal]
