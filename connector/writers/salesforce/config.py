"""The YAML of a salesforce target: label fields per object, campaigns per segment, Bulk threshold, API budget
share; and its check against the source it writes back to (run by `validate`). No transport here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ...crm.salesforce import soql
from ...errors import ConfigError
from ...model import StrictModel
from ...plugin_config import WriterConfigBase


class CampaignTarget(StrictModel):
    campaign: str  # Campaign Name or Id
    member_status: str = "Sent"
    # mirror exactly: also remove members not in the segment (e.g. added by hand), add back members deleted by hand
    strict: bool = False
    create: bool = False  # create the campaign when no campaign has this name


class SalesforceWriterConfig(WriterConfigBase):
    type: Literal["salesforce"]
    source: str  # the salesforce source whose connection and records this target uses
    label_field: dict[str, str] = Field(default_factory=dict)  # object -> field that holds the stage label
    bulk_threshold: int = Field(default=2000, ge=1)
    api_budget_share: float | None = Field(default=0.8, gt=0, le=1)
    campaigns: dict[str, CampaignTarget] = Field(default_factory=dict)  # segment name -> campaign
    # follow-up tasks: the Task field (text, External ID, unique) that holds each task's idempotency key, so a
    # task is found before it would be created twice; null: the state alone remembers (connector/tasks/)
    task_key_field: str | None = "Connector_Key__c"

    source_types = frozenset({"salesforce"})

    @field_validator("task_key_field")
    @classmethod
    def _key_field(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                soql.identifier(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("label_field")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for obj, fld in value.items():
            try:
                soql.identifier(obj)
                soql.identifier(fld)
            except ConfigError as exc:
                raise ValueError(f"label_field.{obj}: {exc}") from None
        return value
