"""What `describe` says about a module: its fields, their labels and types, and its id prefix.

Custom fields are named `cf_NNN`, and the number differs between installs (and is not the field id), so the
YAML names a custom field by its label (`label:Funnel stage`) and this module finds its name. A label that does
not exist is a config error that lists the labels that do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError

LABEL_PREFIX = "label:"


@dataclass(frozen=True)
class FieldInfo:
    name: str
    label: str
    type: str
    mandatory: bool = False
    editable: bool = True
    picklist: tuple[str, ...] = ()
    refers_to: tuple[str, ...] = ()

    @property
    def custom(self) -> bool:
        return self.name.startswith("cf_")


@dataclass
class ModuleInfo:
    name: str
    id_prefix: str | None
    fields: dict[str, FieldInfo] = field(default_factory=dict)

    @classmethod
    def from_describe(cls, result: dict[str, Any]) -> ModuleInfo:
        fields: dict[str, FieldInfo] = {}
        for raw in result.get("fields") or []:
            if not isinstance(raw, dict) or not raw.get("name"):
                continue
            ftype: dict[str, Any] = raw["type"] if isinstance(raw.get("type"), dict) else {}
            picklist = tuple(
                str(v.get("value")) for v in ftype.get("picklistValues") or [] if isinstance(v, dict)
            )
            fields[str(raw["name"])] = FieldInfo(
                name=str(raw["name"]),
                label=str(raw.get("label") or raw["name"]),
                type=str(ftype.get("name") or "string"),
                mandatory=bool(raw.get("mandatory")),
                editable=bool(raw.get("editable", True)),
                picklist=picklist,
                refers_to=tuple(str(m) for m in ftype.get("refersTo") or []),
            )
        prefix = result.get("idPrefix")
        return cls(name=str(result.get("name")), id_prefix=str(prefix) if prefix else None, fields=fields)

    def resolve(self, spec: str) -> str:
        """The field name for `spec`: a plain name (checked) or `label:<label>` (looked up by label)."""
        if not spec.startswith(LABEL_PREFIX):
            if spec in self.fields:
                return spec
            raise ConfigError(
                f"vtiger module {self.name} has no field '{spec}' "
                f"(fields: {', '.join(sorted(self.fields))}; custom fields are named by 'label:<label>')"
            )
        label = spec[len(LABEL_PREFIX) :].strip()
        matches = [f for f in self.fields.values() if f.label == label]
        if not matches:
            matches = [f for f in self.fields.values() if f.label.casefold() == label.casefold()]
        if len(matches) > 1:
            # stock labels repeat ("Type", "Secondary Email"); a custom field is what a label usually names
            custom = [f for f in matches if f.custom]
            matches = custom if len(custom) == 1 else matches
        if len(matches) == 1:
            return matches[0].name
        if not matches:
            raise ConfigError(
                f"vtiger module {self.name} has no field labelled '{label}' "
                f"(labels: {', '.join(sorted({f.label for f in self.fields.values()}))})"
            )
        raise ConfigError(
            f"vtiger module {self.name}: the label '{label}' is ambiguous "
            f"({', '.join(f.name for f in matches)}); name the field instead"
        )
