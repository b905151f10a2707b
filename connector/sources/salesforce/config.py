"""The YAML of a salesforce source: where the org is (`crm.salesforce.settings`), which objects and fields
to read, and how (page sizes, Bulk threshold, reconciliation, API budget share, describe cache); no
transport here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...crm.salesforce import soql
from ...crm.salesforce.settings import SalesforceSettings
from ...errors import ConfigError
from ...mappers.fields import ObjectMapping
from ...plugin_config import SourceConfigBase
from ...schema import FactKind


class SalesforceObjectMapping(ObjectMapping):
    """An object's mapping plus an optional SOQL condition ANDed to every read (admin-written, not escaped).
    Its shape is checked with the config; the org checks its fields and operators before the first read."""

    where: str | None = None

    @field_validator("where")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return soql.condition(value)
        except ConfigError as exc:
            raise ValueError(f"not a SOQL condition: {exc}") from None


class SalesforceSourceConfig(SourceConfigBase, SalesforceSettings):
    type: Literal["salesforce"]
    page_size: int = Field(default=2000, ge=200, le=2000)  # Sforce-Query-Options batchSize
    bulk_threshold: int = Field(default=10000, ge=1)
    # rows per Bulk 2.0 result page (`maxRecords`): each page is one API call, so far more than a REST page,
    # or a bulk read would cost as many calls as paging REST; two pages are held in memory at a time
    bulk_page_size: int = Field(default=10000, ge=200, le=100000)
    overlap_seconds: int = Field(default=60, ge=0)
    # how often the ids of each object are reconciled (purged records, records that left `where`); None: never
    reconcile_every_hours: float | None = Field(default=168, gt=0)
    # reads stop cleanly (exit 6) before this share of the org's daily API allocation is used
    api_budget_share: float | None = Field(default=0.8, gt=0, le=1)
    # how long describes and the LeadStatus / OpportunityStage rows are reused from the state directory
    # instead of asked again each run (metadata changes rarely, a 15-minute cron asks often); 0: every run
    describe_cache_hours: float = Field(default=24, ge=0)
    objects: dict[str, SalesforceObjectMapping] = Field(min_length=1)

    @field_validator("objects")
    @classmethod
    def _names(cls, value: dict[str, SalesforceObjectMapping]) -> dict[str, SalesforceObjectMapping]:
        for obj, mapping in value.items():
            try:
                soql.identifier(obj)
                for name in mapping.fields:
                    soql.identifier(name)
            except ConfigError as exc:
                raise ValueError(f"objects.{obj}: {exc}") from None
            if "." in obj:
                raise ValueError(f"objects.{obj}: an object name has no dots")
        return value

    @model_validator(mode="after")
    def _kinds(self) -> SalesforceSourceConfig:
        opp = self.objects.get("Opportunity")
        if opp is not None and opp.kind is not FactKind.OPPORTUNITY:
            raise ValueError("objects.Opportunity: kind must be opportunity")
        for obj in ("Lead", "Contact"):
            mapping = self.objects.get(obj)
            if mapping is not None and mapping.kind is FactKind.OPPORTUNITY:
                raise ValueError(f"objects.{obj}: kind opportunity makes no sense for {obj}")
        return self
