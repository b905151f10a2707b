"""Put the synthetic people where a real company would have them: Salesforce, vtiger and export files.

Seeding writes straight into the sandboxes' stores (setting up an org is not what the demo measures); every read
and write connector then does goes over the real wire protocol.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

from .dataset import DemoPerson

SF_LEAD_STATUS = {
    "suspect": "Open - Not Contacted",
    "lead": "Working - Contacted",
    "qualified_out": "Closed - Not Converted",
    "acquisition": "Open - Not Contacted",
}
SF_OPP_STAGE = {
    "prospect": "Qualification",
    "opportunity": "Proposal/Price Quote",
    "customer": "Closed Won",
    "renewal": "Closed Won",
    "ambassador": "Closed Won",
    "lost": "Closed Lost",
}
VT_LEAD_STATUS = {
    "suspect": "Not Contacted",
    "lead": "Contacted",
    "qualified_out": "Junk Lead",
    "nurture": "Contact in Future",
    "acquisition": "Not Contacted",
}
VT_SALES_STAGE = {
    "prospect": "Qualification",
    "opportunity": "Proposal or Price Quote",
    "customer": "Closed Won",
    "renewal": "Closed Won",
    "ambassador": "Closed Won",
    "lost": "Closed Lost",
}
LEAD_SCENARIOS = set(SF_LEAD_STATUS) | {"nurture"}


def _close_date(p: DemoPerson, as_of: dt.date) -> dt.date:
    if p.scenario in ("prospect", "opportunity"):
        return as_of + dt.timedelta(days=30 + p.index % 60)
    return as_of - dt.timedelta(days=60 + p.index % 500)


def seed_salesforce(store: Any, people: list[DemoPerson], as_of: dt.date) -> dict[str, int]:
    counts = {"Lead": 0, "Contact": 0, "Opportunity": 0, "Contract": 0}
    for p in people:
        if p.home not in ("salesforce", "both"):
            continue
        base = {
            "FirstName": p.first_name,
            "LastName": p.last_name,
            "Email": p.email,
            "HasOptedOutOfEmail": p.opted_out,
        }
        if p.scenario in LEAD_SCENARIOS:
            status = SF_LEAD_STATUS.get(p.scenario, "Working - Contacted")
            store.insert("Lead", {**base, "Company": p.company, "Status": status})
            counts["Lead"] += 1
            continue
        account = store.insert("Account", {"Name": f"{p.company} #{p.index}"})
        contact = store.insert("Contact", {**base, "AccountId": account})
        counts["Contact"] += 1
        opp = store.insert(
            "Opportunity",
            {
                "Name": f"{p.company} deal {p.index}",
                "AccountId": account,
                "StageName": SF_OPP_STAGE[p.scenario],
                "Amount": p.amount,
                "CloseDate": _close_date(p, as_of).isoformat(),
            },
        )
        store.insert(
            "OpportunityContactRole", {"OpportunityId": opp, "ContactId": contact, "IsPrimary": True}
        )
        counts["Opportunity"] += 1
        if p.contract_end:
            start = p.contract_end - dt.timedelta(days=364)
            store.insert(
                "Contract",
                {"AccountId": account, "StartDate": start.isoformat(), "ContractTerm": 12, "Status": "Draft"},
            )
            counts["Contract"] += 1
    return counts


def seed_vtiger(store: Any, people: list[DemoPerson], as_of: dt.date) -> dict[str, int]:
    counts = {"Leads": 0, "Contacts": 0, "Potentials": 0, "ServiceContracts": 0}
    for p in people:
        if p.home not in ("vtiger", "both"):
            continue
        base = {
            "firstname": p.first_name,
            "lastname": p.last_name,
            "email": p.email,
            "emailoptout": "1" if p.opted_out else "0",
        }
        if p.scenario in LEAD_SCENARIOS:
            status = VT_LEAD_STATUS.get(p.scenario, "Contacted")
            # after a migration vtiger often still holds an older status of a person Salesforce now owns
            if p.home == "both" and p.scenario == "lead":
                status = "Not Contacted"
            store.create("Leads", {**base, "company": p.company, "leadstatus": status})
            counts["Leads"] += 1
            continue
        account = store.create("Accounts", {"accountname": f"{p.company} #{p.index}"})
        contact = store.create("Contacts", {**base, "account_id": account["id"]})
        counts["Contacts"] += 1
        store.create(
            "Potentials",
            {
                "potentialname": f"{p.company} deal {p.index}",
                "related_to": account["id"],
                "contact_id": contact["id"],
                "sales_stage": VT_SALES_STAGE[p.scenario],
                "amount": f"{p.amount:.2f}",
                "closingdate": _close_date(p, as_of).isoformat(),
            },
        )
        counts["Potentials"] += 1
        if p.contract_end:
            store.create(
                "ServiceContracts",
                {
                    "subject": f"Service {p.company} {p.index}",
                    "sc_related_to": contact["id"],
                    "start_date": (p.contract_end - dt.timedelta(days=364)).isoformat(),
                    "due_date": p.contract_end.isoformat(),
                    "contract_status": "In Progress",
                },
            )
            counts["ServiceContracts"] += 1
    return counts


def write_files(directory: Path, people: list[DemoPerson], seed: int) -> dict[str, int]:
    """Competitor contracts (cp1252, `;`, dd-mm-yyyy), web visits (JSON Lines), reviews (XLSX), sales' revisit
    dates (CSV); a few bad rows."""
    from openpyxl import Workbook

    rng = random.Random(seed + 1)
    directory.mkdir(parents=True, exist_ok=True)
    counts = {"competitor_contracts": 0, "web_visits": 0, "reviews": 0, "revisits": 0, "malformed": 0}

    with (directory / "competitor_contracts.csv").open("w", encoding="cp1252", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["E-mail", "Naam", "Provider", "Einddatum"])
        for p in people:
            if p.competitor and p.competitor_end:
                writer.writerow(
                    [
                        p.email,
                        f"{p.first_name} {p.last_name}",
                        p.competitor,
                        p.competitor_end.strftime("%d-%m-%Y"),
                    ]
                )
                counts["competitor_contracts"] += 1
        for i in range(3):
            writer.writerow([f"broken{i}@example.test", "Kapotte Rij", "TeleCorp", "31-02-2027"])
        writer.writerow(["", "Zonder Email", "NetNed", "01-05-2027"])
        counts["malformed"] += 4

    with (directory / "web_visits.jsonl").open("w", encoding="utf-8") as fh:
        for p in people:
            if p.web_visits or p.home == "files":
                visits = p.web_visits or 1
                last = p.last_visit or dt.date(2026, 6, 1)
                fh.write(
                    json.dumps(
                        {
                            "email": p.email.upper() if rng.random() < 0.1 else p.email,
                            "visits": visits,
                            "last_visit": last.isoformat(),
                        }
                    )
                    + "\n"
                )
                counts["web_visits"] += 1
        fh.write('{"email": "half-a-line@example.test", "visits": \n')
        fh.write(json.dumps({"email": "not-a-number@example.test", "visits": "veel"}) + "\n")
        counts["malformed"] += 2

    # the dates sales parked people until, kept beside the CRMs (a planning sheet): a follow-up task is due
    # when one arrives
    with (directory / "revisits.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["E-mail", "Revisit"])
        for p in people:
            if p.nurture_until is not None:
                writer.writerow([p.email, p.nurture_until.isoformat()])
                counts["revisits"] += 1

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Reviews"
    sheet.append(["email", "score", "date"])
    for p in people:
        if p.review_score is not None:
            sheet.append([p.email, p.review_score, dt.datetime(2026, 10, 1)])  # noqa: DTZ001 - a spreadsheet date
            counts["reviews"] += 1
    book.save(directory / "reviews.xlsx")
    return counts
