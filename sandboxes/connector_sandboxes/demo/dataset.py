"""A realistic synthetic funnel: people spread over Salesforce, vtiger and marketing files.

Deterministic for a seed. Each person gets a scenario (where they truly are in the funnel) and a home: only
Salesforce, only vtiger, both (the same e-mail in both CRMs, as after a migration), or only marketing files (a
suspect known from a competitor contract list or web visits). The files carry the quirks real exports have:
`;` delimiters, cp1252 text, dd-mm-yyyy dates, and a few malformed rows.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

FIRST = [
    "Ann",
    "Bram",
    "Carla",
    "Daan",
    "Eva",
    "Femke",
    "Gijs",
    "Hanna",
    "Ilse",
    "Joost",
    "Karin",
    "Lars",
    "Mila",
    "Noah",
    "Olga",
    "Pieter",
    "Quinten",
    "Roos",
    "Sanne",
    "Thijs",
    "Ursula",
    "Vera",
    "Wouter",
    "Xander",
    "Yara",
    "Zoë",
    "Jürgen",
    "Renée",
    "Chloé",
    "Søren",
]
LAST = [
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Dijk",
    "Dekker",
    "Brouwer",
    "Müller",
    "Schäfer",
    "Dubois",
    "Leclercq",
]
COMPANY = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Wonka",
    "Gringotts",
    "Oceanic",
    "Massive Dynamic",
    "Aperture",
    "Blue Sun",
    "Monarch",
    "Nakatomi",
    "Virtucon",
]
COMPETITORS = ["TeleCorp", "NetNed", "Zuidstroom", "KPN-ish"]

# scenario -> weight
SCENARIOS = {
    "suspect": 18,
    "lead": 18,
    "qualified_out": 7,
    "nurture": 5,
    "prospect": 12,
    "opportunity": 10,
    "customer": 13,
    "renewal": 5,
    "lost": 6,
    "ambassador": 3,
    "acquisition": 3,
}
HOMES = {"salesforce": 45, "vtiger": 25, "both": 15, "files": 15}


@dataclass
class DemoPerson:
    index: int
    first_name: str
    last_name: str
    company: str
    email: str
    scenario: str
    home: str
    opted_out: bool = False
    contract_end: dt.date | None = None
    competitor: str | None = None
    competitor_end: dt.date | None = None
    web_visits: int = 0
    last_visit: dt.date | None = None
    review_score: float | None = None
    amount: float = 0.0
    nurture_until: dt.date | None = None
    tags: list[str] = field(default_factory=list)


def _slug(text: str) -> str:
    table = str.maketrans({"ü": "u", "ë": "e", "é": "e", "ø": "o", "ä": "a", " ": "", "-": ""})
    return text.lower().translate(table)


def generate(n: int, as_of: dt.date, seed: int = 7) -> list[DemoPerson]:
    rng = random.Random(seed)
    scenarios = list(SCENARIOS)
    weights = list(SCENARIOS.values())
    homes = list(HOMES)
    home_weights = list(HOMES.values())
    people = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = rng.choice(COMPANY)
        scenario = rng.choices(scenarios, weights)[0]
        home = rng.choices(homes, home_weights)[0]
        if scenario == "acquisition":
            home = "files"
        if home == "files" and scenario not in ("suspect", "lead", "acquisition"):
            home = rng.choice(["salesforce", "vtiger"])
        email = f"{_slug(first)}.{_slug(last)}{i}@{_slug(company)}.example"
        p = DemoPerson(i, first, last, company, email, scenario, home)
        p.opted_out = rng.random() < 0.04
        if scenario in ("customer", "ambassador"):
            p.contract_end = as_of + dt.timedelta(days=rng.randint(120, 700))
            p.amount = float(rng.randint(20, 400) * 100)
        elif scenario == "renewal":
            p.contract_end = as_of + dt.timedelta(days=rng.randint(5, 85))
            p.amount = float(rng.randint(20, 400) * 100)
        elif scenario in ("opportunity", "prospect"):
            p.amount = float(rng.randint(10, 200) * 100)
        if scenario == "ambassador":
            p.review_score = float(rng.choice([9, 9.5, 10]))
        elif scenario in ("customer", "renewal") and rng.random() < 0.5:
            p.review_score = float(rng.randint(5, 8))
        if scenario == "nurture":
            p.nurture_until = as_of + dt.timedelta(days=rng.randint(30, 200))
            # the revisit date sales set has come for some (a follow-up task is due), or comes within the
            # demo's fortnight for a few (few enough that the mass-change guard lets the nurture newsletter
            # shrink); chosen by index, so the random draws (and everyone else) stay as they were
            if i % 3 == 0:
                p.nurture_until = as_of - dt.timedelta(days=i % 5)
            elif i % 24 == 1:
                p.nurture_until = as_of + dt.timedelta(days=1 + i % 13)
        if scenario in ("acquisition", "lost") or (scenario in ("suspect", "lead") and rng.random() < 0.25):
            p.competitor = rng.choice(COMPETITORS)
            window = (10, 170) if scenario in ("acquisition", "lost") and rng.random() < 0.7 else (200, 600)
            p.competitor_end = as_of + dt.timedelta(days=rng.randint(*window))
        if scenario == "lead" or rng.random() < 0.2:
            p.web_visits = rng.randint(3, 25) if scenario == "lead" else rng.randint(1, 2)
            p.last_visit = as_of - dt.timedelta(days=rng.randint(0, 60))
        people.append(p)
    return people
