"""The YAML of a vtiger target: label and segment fields per module, campaigns, concurrency, strictness; and
its cross-checks against the source it writes back to (run by `validate`). No transport here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, model_validator

from ...crm.vtiger import vtql
from ...model import StrictModel
from ...plugin_config import ConfigProblem, SourceConfigBase, WriterConfigBase


class CampaignConfig(StrictModel):
    """The vtiger Campaign people entering a segment are related to."""

    campaign: str  # campaignname
    create: bool = False
    closingdate: dt.date | None = None  # mandatory when vtiger has to create the campaign
    fields: dict[str, str] = Field(
        default_factory=dict
    )  # more fields on create (campaigntype, campaignstatus…)
    value: str | None = None  # what goes into the segments field; default: the campaign name

    @model_validator(mode="after")
    def _creatable(self) -> CampaignConfig:
        if not self.campaign.strip():
            raise ValueError("campaign: name the campaign (campaignname)")
        if self.create and self.closingdate is None:
            raise ValueError("create: true needs closingdate (mandatory on vtiger Campaigns)")
        return self


class VtigerWriterConfig(WriterConfigBase):
    type: Literal["vtiger"]
    source: str  # the vtiger source whose records are labelled, and whose connection settings are used
    label_field: dict[str, str] = Field(default_factory=dict)  # module -> field ("label:Funnel stage")
    segments_field: dict[str, str] = Field(default_factory=dict)  # module -> multi-select field
    # writes at once, one webservice session each; 4 from measurement (README, vtiger): 3.4x over 1 against the
    # session-locking sandbox, 2.4x on a real 2-core vtiger 8.2, whose CPU is then the limit
    concurrency: int = Field(4, ge=1, le=32)
    campaigns: dict[str, CampaignConfig] = Field(default_factory=dict)  # segment name -> campaign
    # check every segment's field each run (one `like` query per module and segment), so a managed value
    # typed onto a non-member by hand is cleared by the next run, not only when the segment next changes, and
    # one removed by hand from a member is put back
    strict: bool = False
    # follow-up tasks: a Calendar field (e.g. "label:Connector key") that holds each task's idempotency key;
    # null: the key goes on the description's last line (connector/writers/vtiger/tasks.py)
    task_key_field: str | None = None

    source_types = frozenset({"vtiger"})

    def cross_check(self, sources: Mapping[str, SourceConfigBase]) -> list[ConfigProblem]:
        problems = super().cross_check(sources)
        source = sources.get(self.source)
        if problems or source is None:
            return problems
        # the target's own fields move modifiedtime on every write; read back as signals they would feed the
        # engine its own output
        for key, fields in (("label_field", self.label_field), ("segments_field", self.segments_field)):
            for module, spec in fields.items():
                if spec in source.signal_fields(module):
                    problems.append(
                        (
                            (key, module),
                            f"'{spec}' is written by this target and must not be mapped as a signal in "
                            f"sources.{source.name}.modules.{module}.fields",
                        )
                    )
        return problems

    @model_validator(mode="after")
    def _modules(self) -> VtigerWriterConfig:
        for module in [*self.label_field, *self.segments_field]:
            if not vtql.IDENT.match(module):
                raise ValueError(f"'{module}' is not a vtiger module name")
        return self
