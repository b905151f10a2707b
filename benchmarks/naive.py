"""The naive baseline: the sync a script written in an afternoon would do, to measure connector against.

Deliberately simple, not deliberately slow: no state, no history, no identity merge, no retries. Each run
reads everything and recomputes everything.

    naive.py files --dir DIR --as-of 2026-11-23
        people.csv + contracts.csv (benchmarks/spine.py's inputs) -> every person's stage and segments -> naive.csv
    naive.py salesforce --login-url URL --ca CA.pem          (credentials from SF_* in the environment)
        every Lead, Contact and opportunity contact role over REST (pages of 2,000), a label per record, then one
        PATCH per record whose label differs
    naive.py vtiger --url URL --ids-file IDS.json --label L  (credentials from VTIGER_* in the environment)
        one login, one describe, then one `revise` per record on that single session

Each prints one JSON line: what it read and wrote, and (CRM modes) `seconds` from its first call to its last.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

# ---- files: load everything, recompute everything, write one CSV ---------------------------------------
STAGE_BY_STATUS = {
    "New": "lead",
    "Working": "prospect",
    "Qualified": "opportunity",
    "Out": "qualified_out",
    "Later": "nurture",
}


def files(folder: Path, as_of: dt.date) -> dict[str, Any]:
    with (folder / "contracts.csv").open(newline="") as fh:
        contract_end = {
            row["email"]: dt.datetime.strptime(row["end"], "%d-%m-%Y").date()
            for row in csv.DictReader(fh, delimiter=";")
        }
    people = 0
    with (folder / "people.csv").open(newline="") as fh, (folder / "naive.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "stage", "segments"])
        for row in csv.DictReader(fh, delimiter=";"):
            email = row["email"].strip().lower()
            stage = STAGE_BY_STATUS.get(row["status"], "suspect")
            segments = []
            end = contract_end.get(email)
            if end is not None and 0 <= (end - as_of).days <= 180:
                segments.append("acquisition")
            if stage in ("lead", "prospect"):
                segments.append("leads")
            writer.writerow([email, stage, "|".join(segments)])
            people += 1
    return {"people": people}


# ---- Salesforce: read all over REST, PATCH one record at a time ------------------------------------------
LEAD_LABEL = {
    "Open - Not Contacted": "Lead",
    "Working - Contacted": "Prospect",
    "Closed - Not Converted": "Qualified Out",
}


def salesforce(login_url: str, ca: str, api: str = "59.0") -> dict[str, Any]:
    http = requests.Session()
    http.verify = ca
    http.trust_env = False
    start = time.perf_counter()
    token = http.post(
        f"{login_url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": os.environ["SF_CLIENT_ID"],
            "client_secret": os.environ["SF_CLIENT_SECRET"],
            "username": os.environ["SF_USERNAME"],
            "password": os.environ["SF_PASSWORD"] + os.environ["SF_SECURITY_TOKEN"],
        },
        timeout=60,
    )
    token.raise_for_status()
    auth = token.json()
    base = f"{auth['instance_url']}/services/data/v{api}"
    http.headers["Authorization"] = f"Bearer {auth['access_token']}"

    def query(soql: str) -> Iterator[dict[str, Any]]:
        page = http.get(
            f"{base}/query", params={"q": soql}, headers={"Sforce-Query-Options": "batchSize=2000"}
        )
        while True:
            page.raise_for_status()
            body = page.json()
            yield from body["records"]
            if body.get("done", True):
                return
            page = http.get(auth["instance_url"] + body["nextRecordsUrl"])

    labels: dict[tuple[str, str], tuple[str | None, str]] = {}
    for lead in query("SELECT Id, Status, IsConverted, Funnel_Stage__c FROM Lead"):
        if not lead["IsConverted"]:  # a converted Lead is read-only
            labels["Lead", lead["Id"]] = (lead["Funnel_Stage__c"], LEAD_LABEL.get(lead["Status"], "Lead"))
    deals: dict[str, list[dict[str, Any]]] = {}
    for role in query(
        "SELECT ContactId, Opportunity.IsClosed, Opportunity.IsWon FROM OpportunityContactRole"
    ):
        deals.setdefault(role["ContactId"], []).append(role["Opportunity"])
    for contact in query("SELECT Id, Funnel_Stage__c FROM Contact"):
        theirs = deals.get(contact["Id"], [])
        if any(d["IsWon"] for d in theirs):
            label = "Customer"
        elif any(not d["IsClosed"] for d in theirs):
            label = "Opportunity"
        elif theirs:
            label = "Lost"
        else:
            label = "Prospect"
        labels["Contact", contact["Id"]] = (contact["Funnel_Stage__c"], label)
    patched = 0
    for (obj, record_id), (now, label) in labels.items():
        if now != label:
            http.patch(
                f"{base}/sobjects/{obj}/{record_id}", json={"Funnel_Stage__c": label}
            ).raise_for_status()
            patched += 1
    return {"read": len(labels), "patched": patched, "seconds": time.perf_counter() - start}


# ---- vtiger: one session, one revise per record ----------------------------------------------------------
def vtiger(url: str, ids: list[str], label: str) -> dict[str, Any]:
    http = requests.Session()
    http.trust_env = False
    endpoint = f"{url}/webservice.php"
    user, key = os.environ["VTIGER_USERNAME"], os.environ["VTIGER_ACCESS_KEY"]

    def answer(reply: requests.Response) -> Any:
        reply.raise_for_status()
        body = reply.json()
        if not body.get("success"):
            raise SystemExit(f"vtiger said no: {body.get('error')}")
        return body["result"]

    start = time.perf_counter()
    challenge = answer(http.get(endpoint, params={"operation": "getchallenge", "username": user}))
    digest = hashlib.md5((challenge["token"] + key).encode()).hexdigest()
    session = answer(http.post(endpoint, data={"operation": "login", "username": user, "accessKey": digest}))
    name = session["sessionName"]
    described = answer(
        http.get(endpoint, params={"operation": "describe", "sessionName": name, "elementType": "Leads"})
    )
    field = next(f["name"] for f in described["fields"] if f["label"] == "Funnel stage")
    for record_id in ids:
        element = json.dumps({"id": record_id, field: label})
        answer(http.post(endpoint, data={"operation": "revise", "sessionName": name, "element": element}))
    return {"revised": len(ids), "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    f = modes.add_parser("files")
    f.add_argument("--dir", type=Path, required=True)
    f.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    s = modes.add_parser("salesforce")
    s.add_argument("--login-url", required=True)
    s.add_argument("--ca", required=True)
    v = modes.add_parser("vtiger")
    v.add_argument("--url", required=True)
    v.add_argument("--ids-file", type=Path, required=True)
    v.add_argument("--label", required=True)
    args = parser.parse_args()
    if args.mode == "files":
        result = files(args.dir, args.as_of)
    elif args.mode == "salesforce":
        result = salesforce(args.login_url, args.ca)
    else:
        result = vtiger(args.url, json.loads(args.ids_file.read_text()), args.label)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
