"""What a fresh sandbox org holds: the standard lead statuses and opportunity stages, and optional demo people."""

from __future__ import annotations

import datetime as dt
import random

from .auth import USER_ID
from .store import Store

LEAD_STATUSES = (
    # (label, converted, default)
    ("Open - Not Contacted", False, True),
    ("Working - Contacted", False, False),
    ("Closed - Converted", True, False),
    ("Closed - Not Converted", False, False),
)
OPPORTUNITY_STAGES = (
    # (label, closed, won, probability)
    ("Prospecting", False, False, 10),
    ("Qualification", False, False, 10),
    ("Needs Analysis", False, False, 20),
    ("Value Proposition", False, False, 50),
    ("Id. Decision Makers", False, False, 60),
    ("Perception Analysis", False, False, 70),
    ("Proposal/Price Quote", False, False, 75),
    ("Negotiation/Review", False, False, 90),
    ("Closed Won", True, True, 100),
    ("Closed Lost", True, False, 0),
)
_FIRST = ("Anna", "Bram", "Chris", "Daan", "Eva", "Fleur", "Gijs", "Hanna", "Iris", "Joost", "Kim", "Lars")
_LAST = ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Peters")
_COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne")


def seed_metadata(store: Store) -> None:
    """LeadStatus and OpportunityStage values as a new Developer Edition org has them, and the API user (the id
    every login answer names), who owns records created without an owner."""
    store.api_user_id = store.insert(
        "User",
        {
            "Username": "integration@connector.sandbox",
            "FirstName": "Integration",
            "LastName": "User",
            "Email": "integration@connector.sandbox",
            "IsActive": True,
        },
        record_id=USER_ID,
    )
    for order, (label, converted, default) in enumerate(LEAD_STATUSES, start=1):
        store.insert(
            "LeadStatus",
            {
                "MasterLabel": label,
                "ApiName": label,
                "IsConverted": converted,
                "IsDefault": default,
                "SortOrder": order,
            },
        )
    for order, (label, closed, won, probability) in enumerate(OPPORTUNITY_STAGES, start=1):
        store.insert(
            "OpportunityStage",
            {
                "MasterLabel": label,
                "ApiName": label,
                "IsClosed": closed,
                "IsWon": won,
                "IsActive": True,
                "DefaultProbability": probability,
                "SortOrder": order,
            },
        )


def seed_people(store: Store, count: int, *, seed: int = 7, today: dt.date | None = None) -> None:
    """About `count` people spread over leads, converted leads, contacts with deals and contracts.

    Deterministic for a given seed, so the demo tells the same story every time.
    """
    if count <= 0:
        return
    rng = random.Random(seed)
    today = today or dt.datetime.now(dt.UTC).date()
    campaign = store.insert("Campaign", {"Name": "Newsletter", "IsActive": True, "Status": "In Progress"})
    stages = [s[0] for s in OPPORTUNITY_STAGES]
    for n in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        company = f"{rng.choice(_COMPANIES)} {n // 5 + 1}"
        email = f"{first.lower()}.{last.lower().replace(' ', '')}.{n}@example.org"
        kind = n % 4
        if kind in (0, 1):
            status = rng.choice([s[0] for s in LEAD_STATUSES if not s[1]])
            lead = store.insert(
                "Lead",
                {
                    "FirstName": first,
                    "LastName": last,
                    "Company": company,
                    "Email": email,
                    "Status": status,
                    "LeadSource": rng.choice(("Web", "Partner Referral", "Other")),
                    "HasOptedOutOfEmail": rng.random() < 0.1,
                },
            )
            if rng.random() < 0.3:
                store.insert("CampaignMember", {"CampaignId": campaign, "LeadId": lead})
            if kind == 1 and rng.random() < 0.3:
                store.convert_lead(lead)
            continue
        account = store.insert(
            "Account", {"Name": company, "Website": f"https://{company.lower().replace(' ', '')}.example"}
        )
        contact = store.insert(
            "Contact",
            {
                "AccountId": account,
                "FirstName": first,
                "LastName": last,
                "Email": email,
                "HasOptedOutOfEmail": rng.random() < 0.05,
                "Contract_End__c": (today + dt.timedelta(days=rng.randint(-60, 400))).isoformat(),
            },
        )
        opportunity = store.insert(
            "Opportunity",
            {
                "Name": f"{company} deal",
                "AccountId": account,
                "StageName": rng.choice(stages),
                "Amount": float(rng.randint(1, 50) * 1000),
                "CloseDate": (today + dt.timedelta(days=rng.randint(-90, 90))).isoformat(),
            },
        )
        store.insert(
            "OpportunityContactRole",
            {"OpportunityId": opportunity, "ContactId": contact, "Role": "Decision Maker", "IsPrimary": True},
        )
        if kind == 3:
            start = today - dt.timedelta(days=rng.randint(30, 700))
            store.insert(
                "Contract",
                {
                    "AccountId": account,
                    "StartDate": start.isoformat(),
                    "ContractTerm": 12,
                    "Status": "Activated",
                },
            )
