"""A seeded world: both CRM sandboxes and the export files holding one synthetic population, plus the config
and environment a run needs to reach them. Shared by `connector demo`, the end-to-end tests and benchmarks."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from connector.config_schema import render as render_schema

from ..salesforce import SalesforceSandbox
from ..vtiger import VtigerSandbox
from .config_template import DEMO_CONFIG, SCHEMA_FILE
from .dataset import DemoPerson
from .seed import seed_salesforce, seed_vtiger, write_files


@dataclass
class World:
    sf: SalesforceSandbox
    vt: VtigerSandbox
    config_path: Path
    environ: dict[str, str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def org_clock() -> dt.datetime:
    """The sandbox org's clock, an hour behind.

    A real org's history lies in the past: the seeded records (thousands of them sharing a few seconds, as the
    org keeps its stamps to the second) are stamped well before the run starts, and the org's clock (its `Date`
    header, on which the source settles its cursors) is not the run's.
    """
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


@contextlib.contextmanager
def seeded_world(
    root: Path,
    population: list[DemoPerson],
    as_of: dt.date,
    *,
    seed: int,
    config_text: str = DEMO_CONFIG,
    sf_clock: Callable[[], dt.datetime] = org_clock,
) -> Iterator[World]:
    """Start both sandboxes, seed them and the files under `root`, write `root/connector.yaml`; stop on exit.

    `sf_clock` is the org's clock (tests that let hours pass between runs move it along with vtiger's).
    """
    with SalesforceSandbox(clock=sf_clock).start() as sf, VtigerSandbox().start() as vt:
        counts = {
            "salesforce": seed_salesforce(sf.store, population, as_of),
            "vtiger": seed_vtiger(vt.store, population, as_of),
            "files": write_files(root / "files", population, seed),
        }
        config_path = root / "connector.yaml"
        (root / SCHEMA_FILE).write_text(render_schema(), encoding="utf-8")
        # the sandbox's own key folder goes when it stops; a copy of its (public) certificate beside the config
        # keeps the config valid afterwards, for `explain`, `report` and `rejected` on the demo's state
        ca_copy = root / "sandbox-ca.pem"
        shutil.copyfile(sf.ca_bundle, ca_copy)
        config_path.write_text(
            config_text.format(sf_login_url=sf.login_url, sf_ca_bundle=ca_copy.name, vt_url=vt.url),
            encoding="utf-8",
        )
        environ = {
            "SF_USERNAME": sf.username,
            "SF_PASSWORD": sf.password,
            "SF_SECURITY_TOKEN": sf.security_token,
            "SF_CLIENT_ID": sf.client_id,
            "SF_CLIENT_SECRET": sf.client_secret,
            **vt.env(),
        }
        yield World(sf, vt, config_path, environ, counts)
