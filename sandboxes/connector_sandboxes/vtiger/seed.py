"""Demo data: people spread over Leads and Contacts, a few accounts and campaigns with members."""

from __future__ import annotations

import random

from connector_sandboxes.vtiger.store import VtigerStore

FIRST = ("Lotte", "Thijs", "Ines", "Zoe", "Marloes", "Anouk", "Daan", "Sem", "Fleur", "Bram", "Noor", "Jesse")
LAST = (
    "van den Berg",
    "de Vries",
    "O'Neill",
    "Bakker",
    "Mulder",
    "Jansen",
    "Visser",
    "Smit",
    "Meijer",
    "Bos",
)
STATUSES = ("Cold", "Warm", "Hot", "Contacted", "Qualified", "Not Contacted")
CAMPAIGNS = ("Nurture newsletter", "Renewal 2027", "Ambassadors")


def seed_people(store: VtigerStore, count: int, *, seed: int = 7) -> None:
    """Create `count` people (about two thirds Leads, one third Contacts) and relate some to campaigns."""
    if count <= 0:
        return
    rng = random.Random(seed)
    campaigns = [
        store.create(
            "Campaigns", {"campaignname": name, "closingdate": "2027-12-31", "campaignstatus": "Active"}
        )
        for name in CAMPAIGNS
    ]
    accounts = [store.create("Accounts", {"accountname": f"Voorbeeld {n} B.V."}) for n in range(1, 4)]
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}.{n}".lower().replace(" ", "").replace("'", "") + "@voorbeeld.nl"
        if n % 3 == 2:
            person = store.create(
                "Contacts",
                {
                    "firstname": first,
                    "lastname": last,
                    "email": email,
                    "account_id": rng.choice(accounts)["id"],
                },
            )
        else:
            person = store.create(
                "Leads",
                {
                    "firstname": first,
                    "lastname": last,
                    "email": email,
                    "company": f"{last} Holding",
                    "leadstatus": rng.choice(STATUSES),
                },
            )
        if rng.random() < 0.3:
            store.relate(rng.choice(campaigns)["id"], person["id"])
