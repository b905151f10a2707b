"""`explain` over real HTTP: each value names the record it really came from (both loopback CRMs)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import structlog
from click.testing import CliRunner

from connector.cli import cli
from connector.config import load_config
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector_sandboxes.demo.dataset import generate
from connector_sandboxes.demo.world import seeded_world

AS_OF = dt.date(2026, 11, 23)


def test_a_won_salesforce_deal_is_credited_to_salesforce_not_to_the_open_vtiger_potential(
    tmp_path: Path,
) -> None:
    people = generate(240, AS_OF, seed=3)
    # someone in both CRMs with a deal in each at the quote stage, same close date (seed 3 has several)
    who = next(p for p in people if p.home == "both" and p.scenario == "opportunity")
    with seeded_world(tmp_path, people, AS_OF, seed=3) as seeded:
        opp = next(
            o for o in seeded.sf.store.all("Opportunity") if o["Name"] == f"{who.company} deal {who.index}"
        )
        # sales won the deal in Salesforce; vtiger's potential still says 'Proposal or Price Quote'
        seeded.sf.store.update("Opportunity", opp["Id"], {"StageName": "Closed Won"})
        potential = next(
            r
            for r in seeded.vt.store.all("Potentials")
            if r["potentialname"] == f"{who.company} deal {who.index}"
        )
        assert potential["sales_stage"] == "Proposal or Price Quote"
        config = load_config(seeded.config_path)
        policy = RetryPolicy(attempts=12, sleep=lambda s: None)
        Runner(config, environ=seeded.environ, policy=policy).execute("run", AS_OF)
    try:
        result = CliRunner().invoke(
            cli,
            ["--log-level", "warning", "explain", "-c", str(seeded.config_path), who.email, "--json"],
            catch_exceptions=False,
        )
    finally:
        structlog.reset_defaults()
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["values"]["opportunity_stage"] == "won"
    assert out["provenance"]["opportunity_stage"] == f"sf_prod:Opportunity:{opp['Id']}"
    assert out["provenance"]["won_date"] == f"sf_prod:Opportunity:{opp['Id']}"
    # the open potential is what keeps a deal open, and it is named for that
    assert out["provenance"]["opportunity_open"] == f"vt_main:Potentials:{potential['id']}"
