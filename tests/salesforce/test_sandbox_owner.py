"""Every Lead and Contact of a real org has an owner (OwnerId): the sandbox org gives the API user, as an org
does to records created over the API without one; a task's owner lookup reads it over SOQL."""

from __future__ import annotations

from simple_salesforce import Salesforce

from connector_sandboxes.salesforce import SalesforceSandbox
from connector_sandboxes.salesforce.auth import USER_ID


def test_leads_and_contacts_have_an_owner_readable_over_soql(
    sf_client: Salesforce, sf_sandbox: SalesforceSandbox
) -> None:
    lead = sf_sandbox.store.insert("Lead", {"LastName": "Visser", "Company": "Acme"})
    contact = sf_client.Contact.create({"LastName": "Jansen"})["id"]
    rows = sf_client.query(f"SELECT Id, OwnerId FROM Lead WHERE Id = '{lead}'")["records"]
    assert rows[0]["OwnerId"] == USER_ID
    rows = sf_client.query(f"SELECT Id, OwnerId FROM Contact WHERE Id = '{contact}'")["records"]
    assert rows[0]["OwnerId"] == USER_ID
    fields = {f["name"]: f for f in sf_client.Lead.describe()["fields"]}
    assert (fields["OwnerId"]["type"], fields["OwnerId"]["referenceTo"]) == ("reference", ["User"])
