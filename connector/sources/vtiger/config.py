"""The YAML of a vtiger source: where the CRM is (`crm.vtiger.settings`), which modules and fields to read,
and how (incremental mode, reconciliation); no transport here."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...crm.vtiger import vtql
from ...crm.vtiger.settings import VtigerSettings
from ...mappers.fields import ObjectMapping
from ...plugin_config import SourceConfigBase
from ...schema import LEAD_STATUS_MEANINGS, OPPORTUNITY_MEANINGS

MEANINGS = {"lead_status": LEAD_STATUS_MEANINGS, "opportunity_stage": OPPORTUNITY_MEANINGS}


class VtigerModuleConfig(ObjectMapping):
    """One vtiger module: the generic mapping, plus the reference fields an opportunity/contract hangs on."""

    links: list[str] | None = (
        None  # default: Potentials contact_id, related_to; ServiceContracts sc_related_to
    )

    @model_validator(mode="after")
    def _meanings_known(self) -> VtigerModuleConfig:
        for target, allowed in MEANINGS.items():
            for raw, meaning in (self.value_maps.get(target) or {}).items():
                if meaning is not None and meaning not in allowed:
                    raise ValueError(
                        f"value_maps.{target}.{raw}: '{meaning}' is not one of {', '.join(allowed)}"
                    )
        return self


class VtigerSourceConfig(SourceConfigBase, VtigerSettings):
    type: Literal["vtiger"]
    incremental: Literal["auto", "sync", "query"] = "auto"
    # id reconciliation (deletions) of a module read by `query`: on every Nth such run (1: every one), and
    # also once `reconcile_every_hours` have passed since the last one. The hours only add reconciliations,
    # never skip one: with reconcile_every 1 they change nothing, so to reconcile by time raise that too.
    reconcile_every: int = Field(1, ge=1)
    reconcile_every_hours: float | None = Field(None, gt=0)
    modules: dict[str, VtigerModuleConfig]

    def signal_fields(self, obj: str) -> Collection[str]:
        module = self.modules.get(obj)
        return module.fields.keys() if module is not None else ()

    @field_validator("modules")
    @classmethod
    def _module_names(cls, value: dict[str, VtigerModuleConfig]) -> dict[str, VtigerModuleConfig]:
        if not value:
            raise ValueError("name at least one vtiger module")
        for name in value:
            if not vtql.IDENT.match(name):
                raise ValueError(f"'{name}' is not a vtiger module name")
        return value
