"""The run's one connection to a Salesforce org: secrets from the environment, one logged-in client, the
describe cache, the count of connector's own writes (`own_writes`) and the API budget.

A run opens it once per salesforce source and hands it to that source and to every salesforce target writing
back to it: one login, one connection pool, one reading of the org's daily API usage. Each user binds it for
its own calls (`bind`): which name counts them in the run summary, and the share of the daily allocation that
user may take. The connection owns the client: plugins use it, the run closes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from ...context import RunContext
from ...retry import RetryPolicy
from .auth import SalesforceSecrets, check_secrets
from .budget import ApiBudget
from .client import SalesforceClient
from .describe_cache import DescribeCache, cache_path
from .own_writes import OwnWrites, writes_path
from .settings import SalesforceSettings

# how the org refuses a query naming a field or object it no longer has: a cached describe may be stale
STALE_DESCRIBE = frozenset({"INVALID_FIELD", "INVALID_TYPE"})


def open_describe_cache(
    name: str, settings: SalesforceSettings, hours: float, state_dir: Path | None
) -> DescribeCache | None:
    """The describe cache of source `name`, or None when it is off (0 hours) or no state directory is kept."""
    if not hours or state_dir is None:
        return None
    return DescribeCache(
        cache_path(Path(state_dir), name),
        api_version=settings.api_version,
        login=settings.login_base(),
        ttl=dt.timedelta(hours=hours),
    )


class SalesforceConnection:
    """One org as the run reaches it: `name` is the source's name."""

    system: ClassVar[str] = "salesforce"

    def __init__(
        self,
        name: str,
        settings: SalesforceSettings,
        client: SalesforceClient,
        own_writes: OwnWrites | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.client = client
        # what the targets wrote through this connection, for the source's next read (None: no state dir)
        self.own_writes = own_writes

    @classmethod
    def open(
        cls,
        name: str,
        settings: SalesforceSettings,
        *,
        environ: Mapping[str, str] | None,
        policy: RetryPolicy,
        state_dir: Path | None = None,
        describe_cache_hours: float = 0,
    ) -> SalesforceConnection:
        """Check the secrets the auth flow needs and build the client; no network call (it logs in on first
        use)."""
        secrets = SalesforceSecrets.load(settings.env_prefix, environ)
        check_secrets(settings, secrets)
        client = SalesforceClient(
            settings,
            secrets,
            policy=policy,
            system=name,
            budget=ApiBudget(),
            describe_cache=open_describe_cache(name, settings, describe_cache_hours, state_dir),
        )
        own_writes = OwnWrites(writes_path(Path(state_dir), name)) if state_dir is not None else None
        return cls(name, settings, client, own_writes)

    def bind(self, ctx: RunContext, *, counted_as: str, budget_share: float | None) -> None:
        """The calls from here on are `counted_as`'s (a source or a target name) and stop before they cross
        `budget_share` of the daily allocation; the usage figures themselves are the org's, shared by all."""
        self.client.on_call = lambda: ctx.count_call(counted_as)
        self.client.budget.share = budget_share
        if self.client.describe_cache is not None:
            self.client.describe_cache.now = ctx.started_at

    def close(self) -> None:
        self.client.close()
