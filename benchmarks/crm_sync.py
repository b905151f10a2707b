"""The whole job against both CRM sandboxes: wall time and API calls for a first run and a no-change run.

Optionally adds per-call latency to both sandboxes (a real CRM answers in tens of milliseconds, and vtiger has
no batch write, so its per-record calls dominate) and compares vtiger write concurrency settings.

    .venv/bin/python benchmarks/crm_sync.py [--people 1000 5000] [--latency 0 0.02] [--concurrency 1 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import tempfile
import time
from pathlib import Path

from connector import logs
from connector.config import load_config
from connector.demo.config_template import DEMO_CONFIG
from connector.demo.dataset import generate
from connector.demo.seed import seed_salesforce, seed_vtiger, write_files
from connector.pipeline import Runner
from connector.retry import RetryPolicy
from connector.sandboxes.salesforce import SalesforceSandbox
from connector.sandboxes.vtiger import VtigerSandbox

AS_OF = dt.date(2026, 11, 23)


def one(people: int, latency: float, concurrency: int) -> list[str]:
    def org_clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)

    population = generate(people, AS_OF, seed=5)
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        SalesforceSandbox(clock=org_clock).start() as sf,
        VtigerSandbox().start() as vt,
    ):
        root = Path(tmp)
        seed_salesforce(sf.store, population, AS_OF)
        seed_vtiger(vt.store, population, AS_OF)
        write_files(root / "files", population, seed=5)
        text = DEMO_CONFIG.format(sf_login_url=sf.login_url, sf_ca_bundle=sf.ca_bundle, vt_url=vt.url)
        text = re.sub(r"concurrency: \d+", f"concurrency: {concurrency}", text)
        (root / "connector.yaml").write_text(text)
        environ = {
            "SF_USERNAME": sf.username,
            "SF_PASSWORD": sf.password,
            "SF_SECURITY_TOKEN": sf.security_token,
            "SF_CLIENT_ID": sf.client_id,
            "SF_CLIENT_SECRET": sf.client_secret,
            **vt.env(),
        }
        runner = Runner(
            load_config(root / "connector.yaml"), environ=environ, policy=RetryPolicy(sleep=lambda s: None)
        )
        sf.faults.latency = latency
        vt.faults.latency = latency
        for label in ("first run", "no change"):
            sf.reset_calls()
            vt.reset_calls()
            start = time.perf_counter()
            summary = runner.execute("run", AS_OF)
            secs = time.perf_counter() - start
            sf_calls = sum(sf.call_counts().values())
            vt_calls = sum(vt.calls.values())
            labels = sum(s.get("written", 0) for s in summary.labels.values())
            rows.append(
                f"{people:>6} {latency * 1000:>6.0f}ms {concurrency:>4} {label:<10} {secs:>7.2f}s "
                f"{sf_calls:>8} {vt_calls:>8} {labels:>7}  exit={summary.exit_code}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.02])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4])
    args = parser.parse_args()
    logs.configure("error")
    print(
        f"{'people':>6} {'latency':>8} {'conc':>4} {'run':<10} {'wall':>8} {'sf calls':>8} {'vt calls':>8} {'labels':>7}"
    )
    for people in args.people:
        for latency in args.latency:
            for concurrency in args.concurrency:
                for row in one(people, latency, concurrency):
                    print(row, flush=True)


if __name__ == "__main__":
    main()
