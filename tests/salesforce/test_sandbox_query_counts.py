"""The sandbox counts what each query read, by the object in its FROM: tests of read-only commands (`check`)
prove with it that no record of a person was read, whatever other calls were made."""

from __future__ import annotations

from simple_salesforce import Salesforce

from connector_sandboxes.salesforce import SalesforceSandbox


def test_queries_are_counted_per_object(sf_client: Salesforce, sf_sandbox: SalesforceSandbox) -> None:
    sf_sandbox.reset_calls()
    sf_client.query("SELECT Id FROM Lead")
    sf_client.query_all("SELECT ApiName, IsConverted FROM LeadStatus")
    sf_client.query("SELECT Id FROM Lead WHERE Email = 'x@y.test'")
    sf_client.describe()  # global describe, limits and describes read no records
    sf_client.Lead.describe()
    sf_client.limits()
    assert sf_sandbox.queried_objects() == {"Lead": 2, "LeadStatus": 1}
    sf_sandbox.reset_calls()
    assert sf_sandbox.queried_objects() == {}
