"""The sandbox org's schema: which sObjects exist, their fields, types and write rules.

Only what connector reads or writes is modelled, but each field carries the describe properties a real org
reports (type, createable/updateable, nillable, restricted picklist, reference target), because clients
check their field mappings against `describe` before they run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FUNNEL_STAGES = (
    # The 001 sales-funnel model with its detours ...
    "Suspect",
    "Lead",
    "Prospect",
    "Opportunity",
    "Customer",
    "Ambassador",
    "Nurture",
    "Qualified Out",
    "Lost",
    # ... and the 004/002 journey vocabularies.
    "Awareness",
    "Consideration",
    "Evaluation",
    "Purchase",
    "Experience",
    "Loyalty",
    "Bond",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
CONTRACT_STATUSES = ("Draft", "In Approval Process", "Activated")
CAMPAIGN_STATUSES = ("Planned", "In Progress", "Completed", "Aborted")
# The Task picklists of a new org (TaskStatus / TaskPriority rows), with their defaults, and Subject's combobox
# suggestions. Status and Priority refuse other values over the API, like every status field backed by its own
# value object (LeadStatus, OpportunityStage): INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST.
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_CLOSED_STATUSES = frozenset({"Completed"})
TASK_PRIORITIES = ("High", "Normal", "Low")
TASK_SUBJECTS = ("Call", "Send Letter", "Send Quote", "Other")
CONTACT_ROLES = (
    "Business User",
    "Decision Maker",
    "Economic Buyer",
    "Economic Decision Maker",
    "Evaluator",
    "Executive Sponsor",
    "Influencer",
    "Technical Buyer",
    "Other",
)
SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")


@dataclass(frozen=True)
class FieldDef:
    """One field as describe reports it. `picklist` holds static values; dynamic ones come from the store."""

    name: str
    type: str
    label: str = ""
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: str | None = None
    relationship: str | None = None
    external_id: bool = False
    length: int = 0
    # a polymorphic reference (Task.WhoId: Contact or Lead) names every object it may point to; `reference_to`
    # is then the first, the one SOQL follows for the relationship's fields
    reference_targets: tuple[str, ...] = ()
    unique: bool = False  # case-insensitive, as a unique text field is unless made case-sensitive
    default: str | None = None  # a picklist's default value, set on create when the field is not sent

    @property
    def targets(self) -> tuple[str, ...]:
        """Every sObject this reference may point to."""
        if self.reference_targets:
            return self.reference_targets
        return (self.reference_to,) if self.reference_to else ()

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")


@dataclass(frozen=True)
class ObjectDef:
    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    # Maps lower-cased field names and relationship names to the canonical field, for SOQL lookups.
    by_lower: dict[str, FieldDef] = field(default_factory=dict)
    relationships: dict[str, FieldDef] = field(default_factory=dict)

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldDef | None:
        return self.by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        return self.relationships.get(name.lower())


def _label(name: str) -> str:
    base = name.removesuffix("__c").removesuffix("Id") if name != "Id" else "Record ID"
    return base.replace("_", " ")


def _f(name: str, type_: str, **kw: object) -> FieldDef:
    kw.setdefault("label", _label(name))
    if type_ in ("string", "email", "url", "picklist", "combobox", "textarea") and "length" not in kw:
        kw["length"] = 255
    if type_ == "boolean":
        kw.setdefault("nillable", False)
    return FieldDef(name=name, type=type_, **kw)  # type: ignore[arg-type]


def _ref(name: str, target: str, **kw: object) -> FieldDef:
    kw.setdefault("relationship", name.removesuffix("Id"))
    return _f(name, "reference", reference_to=target, **kw)


def _polymorphic(name: str, relationship: str, targets: tuple[str, ...], **kw: object) -> FieldDef:
    return _f(
        name,
        "reference",
        reference_to=targets[0],
        reference_targets=targets,
        relationship=relationship,
        **kw,
    )


def _readonly(name: str, type_: str, **kw: object) -> FieldDef:
    return _f(name, type_, createable=False, updateable=False, **kw)


def _system_fields() -> list[FieldDef]:
    return [
        _f("Id", "id", createable=False, updateable=False, nillable=False, length=18),
        _readonly("IsDeleted", "boolean"),
        _readonly("CreatedDate", "datetime", nillable=False),
        _readonly("LastModifiedDate", "datetime", nillable=False),
        _readonly("SystemModstamp", "datetime", nillable=False),
    ]


def _obj(name: str, prefix: str, label: str, plural: str, fields: list[FieldDef]) -> ObjectDef:
    all_fields = _system_fields() + fields
    obj = ObjectDef(name=name, key_prefix=prefix, label=label, label_plural=plural)
    for f in all_fields:
        obj.fields[f.name] = f
        obj.by_lower[f.name.lower()] = f
        if f.relationship:
            obj.relationships[f.relationship.lower()] = f
    return obj


FUNNEL = _f("Funnel_Stage__c", "picklist", label="Funnel Stage", picklist=FUNNEL_STAGES, restricted=True)
EXTERNAL_ID = _f("External_Id__c", "string", label="External Id", external_id=True)
# The custom field a client keeps its own key for a task in (an idempotency key): External ID and unique, so a
# second create with the same key is refused with DUPLICATE_VALUE and an upsert on it finds the first.
TASK_KEY = _f("Connector_Key__c", "string", label="Connector Key", external_id=True, unique=True)


def _task() -> ObjectDef:
    return _obj(
        "Task",
        "00T",
        "Task",
        "Tasks",
        [
            _polymorphic("WhoId", "Who", ("Contact", "Lead"), label="Name ID"),
            _polymorphic(
                "WhatId", "What", ("Account", "Opportunity", "Campaign", "Contract"), label="Related To ID"
            ),
            _f("Subject", "combobox", picklist=TASK_SUBJECTS),
            _f("ActivityDate", "date", label="Due Date Only"),
            _f(
                "Status",
                "picklist",
                nillable=False,
                restricted=True,
                picklist=TASK_STATUSES,
                default="Not Started",
            ),
            _f(
                "Priority",
                "picklist",
                nillable=False,
                restricted=True,
                picklist=TASK_PRIORITIES,
                default="Normal",
            ),
            _readonly("IsHighPriority", "boolean", label="High Priority"),
            # defaulted to the API user on create, like any owner field
            _ref("OwnerId", "User", nillable=False, relationship="Owner", label="Assigned To ID"),
            _f("Description", "textarea", length=32000),
            _readonly("IsClosed", "boolean", label="Closed"),
            TASK_KEY,
        ],
    )


def build_objects() -> dict[str, ObjectDef]:
    """The catalog of sObjects the sandbox serves, keyed by API name."""
    objects = [
        _obj(
            "Lead",
            "00Q",
            "Lead",
            "Leads",
            [
                _f("FirstName", "string"),
                _f("LastName", "string", nillable=False, required=True),
                _readonly("Name", "string", label="Full Name", nillable=False),
                _f("Email", "email"),
                _f("Company", "string", nillable=False, required=True),
                # Lead Status and Opportunity StageName take their values from LeadStatus/OpportunityStage.
                _f("Status", "picklist", nillable=False, restricted=True),
                _f("LeadSource", "picklist", picklist=LEAD_SOURCES),
                _readonly("IsConverted", "boolean", label="Converted"),
                _readonly(
                    "ConvertedContactId", "reference", reference_to="Contact", relationship="ConvertedContact"
                ),
                _readonly(
                    "ConvertedAccountId", "reference", reference_to="Account", relationship="ConvertedAccount"
                ),
                _readonly(
                    "ConvertedOpportunityId",
                    "reference",
                    reference_to="Opportunity",
                    relationship="ConvertedOpportunity",
                ),
                _readonly("ConvertedDate", "date"),
                _f("HasOptedOutOfEmail", "boolean", label="Email Opt Out"),
                _f("Website", "url"),
                # every Lead and Contact has an owner (a user, or for a Lead a queue): the API user by default
                _ref("OwnerId", "User", nillable=False, relationship="Owner", label="Owner ID"),
                FUNNEL,
                EXTERNAL_ID,
            ],
        ),
        _obj(
            "Contact",
            "003",
            "Contact",
            "Contacts",
            [
                _ref("AccountId", "Account"),
                _f("FirstName", "string"),
                _f("LastName", "string", nillable=False, required=True),
                _readonly("Name", "string", label="Full Name", nillable=False),
                _f("Email", "email"),
                _f("HasOptedOutOfEmail", "boolean", label="Email Opt Out"),
                FUNNEL,
                _f("Contract_End__c", "date", label="Contract End"),
                _ref("OwnerId", "User", nillable=False, relationship="Owner", label="Owner ID"),
                EXTERNAL_ID,
            ],
        ),
        _obj(
            "Account",
            "001",
            "Account",
            "Accounts",
            [
                _f("Name", "string", label="Account Name", nillable=False, required=True),
                _f("Website", "url"),
                _f("Contract_End_Date__c", "date", label="Contract End Date"),
            ],
        ),
        _obj(
            "Opportunity",
            "006",
            "Opportunity",
            "Opportunities",
            [
                _f("Name", "string", nillable=False, required=True),
                _ref("AccountId", "Account"),
                _f("StageName", "picklist", label="Stage", nillable=False, required=True, restricted=True),
                _f("Amount", "currency"),
                _f("CloseDate", "date", nillable=False, required=True),
                _readonly("IsClosed", "boolean", label="Closed"),
                _readonly("IsWon", "boolean", label="Won"),
            ],
        ),
        _obj(
            "OpportunityContactRole",
            "00K",
            "Opportunity Contact Role",
            "Opportunity Contact Role",
            [
                _ref("OpportunityId", "Opportunity", nillable=False, required=True, updateable=False),
                _ref("ContactId", "Contact", nillable=False, required=True),
                _f("Role", "picklist", picklist=CONTACT_ROLES),
                _f("IsPrimary", "boolean", label="Primary"),
            ],
        ),
        _obj(
            "Contract",
            "800",
            "Contract",
            "Contracts",
            [
                _ref("AccountId", "Account", nillable=False, required=True),
                _f("StartDate", "date", label="Contract Start Date"),
                # Salesforce computes EndDate from StartDate and ContractTerm; the sandbox stores it when
                # no term is given so contracts loaded from outside data keep their end date.
                _f("EndDate", "date", label="Contract End Date"),
                _f("ContractTerm", "int", label="Contract Term"),
                _f("Status", "picklist", picklist=CONTRACT_STATUSES, nillable=False, restricted=True),
            ],
        ),
        _obj(
            "Campaign",
            "701",
            "Campaign",
            "Campaigns",
            [
                _f("Name", "string", label="Campaign Name", nillable=False, required=True),
                _f("IsActive", "boolean", label="Active"),
                _f("Status", "picklist", picklist=CAMPAIGN_STATUSES),
            ],
        ),
        _obj(
            "CampaignMember",
            "00v",
            "Campaign Member",
            "Campaign Members",
            [
                _ref("CampaignId", "Campaign", nillable=False, required=True, updateable=False),
                _ref("LeadId", "Lead", updateable=False),
                _ref("ContactId", "Contact", updateable=False),
                # Values depend on the campaign (CampaignMemberStatus), so describe lists none.
                _f("Status", "picklist"),
                _readonly("HasResponded", "boolean", label="Responded"),
            ],
        ),
        _obj(
            "CampaignMemberStatus",
            "01Y",
            "Campaign Member Status",
            "Campaign Member Statuses",
            [
                _ref("CampaignId", "Campaign", nillable=False, required=True, updateable=False),
                _f("Label", "string", nillable=False, required=True),
                _f("IsDefault", "boolean", label="Default"),
                _f("HasResponded", "boolean", label="Responded"),
                _f("SortOrder", "int"),
            ],
        ),
        _obj(
            "LeadStatus",
            "01J",
            "Lead Status Value",
            "Lead Status Value",
            [
                _readonly("MasterLabel", "string", label="Master Label"),
                _readonly("ApiName", "string", label="Api Name"),
                _readonly("IsConverted", "boolean", label="Converted"),
                _readonly("IsDefault", "boolean", label="Default"),
                _readonly("SortOrder", "int"),
            ],
        ),
        _obj(
            "OpportunityStage",
            "01J",
            "Opportunity Stage",
            "Opportunity Stage",
            [
                _readonly("MasterLabel", "string", label="Master Label"),
                _readonly("ApiName", "string", label="Api Name"),
                _readonly("IsClosed", "boolean", label="Closed"),
                _readonly("IsWon", "boolean", label="Won"),
                _readonly("IsActive", "boolean", label="Active"),
                _readonly("DefaultProbability", "percent", label="Probability (%)"),
                _readonly("SortOrder", "int"),
            ],
        ),
        _task(),
        _obj(
            "User",
            "005",
            "User",
            "Users",
            [
                _f("Username", "string", nillable=False, required=True),
                _f("FirstName", "string"),
                _f("LastName", "string", nillable=False, required=True),
                _readonly("Name", "string", label="Full Name", nillable=False),
                _f("Email", "email", nillable=False, required=True),
                _f("IsActive", "boolean", label="Active"),
            ],
        ),
    ]
    return {o.name: o for o in objects}
