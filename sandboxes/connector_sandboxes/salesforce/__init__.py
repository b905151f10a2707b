"""A loopback Salesforce org speaking the REST, OAuth, SOAP-login and Bulk API 2.0 wire protocols.

Tests, the demo and the benchmarks point real clients (simple-salesforce, requests) at it over HTTPS::

    with SalesforceSandbox().start() as sb:
        requests.post(f"{sb.login_url}/services/oauth2/token", data={...}, verify=sb.ca_bundle)
"""

from __future__ import annotations

import contextlib
import time

from .auth import Credentials
from .faults import Faults
from .sandbox import SalesforceSandbox
from .store import SObjectError, Store

__all__ = ["Credentials", "Faults", "SObjectError", "SalesforceSandbox", "Store", "serve"]


# A salesforce source that reads exactly the variables printed below (connector substitutes ${VAR} in values).
SOURCE_SETTINGS = (
    "# with a salesforce source in connector.yaml like this one:",
    "#   - name: sf_sandbox",
    "#     type: salesforce",
    "#     auth: password",
    "#     login_url: ${SF_LOGIN_URL}",
    "#     ca_bundle: ${SF_CA_BUNDLE}",
    "#     api_version: ${SF_API_VERSION}",
    "#     env_prefix: SF_",
)


def serve(host: str = "127.0.0.1", port: int = 0, seed_people: int = 0) -> None:
    """Run a sandbox in the foreground, print how to reach it (as exportable env lines), block until Ctrl-C."""
    sandbox = SalesforceSandbox(host=host, port=port, seed_people=seed_people).start()
    # from here on every way out (Ctrl-C even while the settings print) stops it and removes its key folder
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a user stops the sandbox
            # only what connector reads: its credentials (<env_prefix>...) and the variables the source
            # below names; not REQUESTS_CA_BUNDLE, which connector ignores (ca_bundle wins) and which would make
            # every other program in the shell trust the sandbox's CA
            lines = [
                f"SF_INSTANCE_URL={sandbox.instance_url}",
                f"SF_LOGIN_URL={sandbox.login_url}",
                f"SF_CA_BUNDLE={sandbox.ca_bundle}",
                f"SF_USERNAME={sandbox.username}",
                f"SF_PASSWORD={sandbox.password}",
                f"SF_SECURITY_TOKEN={sandbox.security_token}",
                f"SF_CLIENT_ID={sandbox.client_id}",
                f"SF_CLIENT_SECRET={sandbox.client_secret}",
                f"SF_API_VERSION={sandbox.api_version}",
            ]
            print(
                "# Salesforce sandbox running; export these to point connector at it (Ctrl-C stops it):",
                flush=True,
            )
            for line in SOURCE_SETTINGS:
                print(line, flush=True)
            for line in lines:
                print(line, flush=True)
            while True:
                time.sleep(3600)
    finally:
        sandbox.stop()
