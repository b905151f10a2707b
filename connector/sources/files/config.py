"""The YAML of a file source (which file, which columns feed which schema field); no reading here."""

from __future__ import annotations

import codecs
import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ...mappers.fields import DEFAULT_DATE_FORMATS, ObjectMapping, fields_for_kind
from ...mappers.files import IDENTITY_FIELDS, JoinKey
from ...plugin_config import SourceConfigBase
from ...schema import FactKind
from ...suggest import did_you_mean

DELIMITER_ALIASES = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}


class FileSourceConfig(SourceConfigBase):
    type: Literal["file"]
    default_role: ClassVar[str] = "marketing"  # enrichment files are marketing signals unless `role: sales`
    path: str  # relative to the YAML file; glob characters read every match
    format: Literal["auto", "csv", "xlsx", "jsonl"] = "auto"
    encoding: str = "auto"
    delimiter: str = "auto"
    sheet: str | None = None
    kind: FactKind = FactKind.ENRICHMENT
    join: JoinKey = "email"
    id_column: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    constants: dict[str, Any] = Field(default_factory=dict)
    date_formats: list[str] = Field(default_factory=lambda: list(DEFAULT_DATE_FORMATS))

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("path must name a file (or a glob)")
        return value.strip()

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(
                f"unknown encoding '{value}' (auto, utf-8, utf-8-sig, cp1252, latin-1, …)"
            ) from None

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        value = DELIMITER_ALIASES.get(value, value)
        if value != "auto" and (len(value) != 1 or value in '"\r\n'):
            raise ValueError(f"delimiter must be auto or one character such as ; , | or tab, not {value!r}")
        return value

    @field_validator("date_formats")
    @classmethod
    def _some_formats(cls, value: list[str]) -> list[str]:
        if not value or any("%" not in fmt for fmt in value):
            raise ValueError("date_formats needs strptime formats such as '%d-%m-%Y'")
        return value

    @field_validator("fields")
    @classmethod
    def _fields_fit_kind(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # `kind` and `join` are declared before `fields`, so they are validated already (absent if invalid).
        kind, join = info.data.get("kind"), info.data.get("join")
        known = set(fields_for_kind(kind)) | set(IDENTITY_FIELDS) if kind else None
        problems = []
        for src, target in value.items():
            if not target or not target.strip():
                problems.append(f"{src}: needs a schema field name")
            elif known is not None and not target.startswith(("extra.", "xref.")) and target not in known:
                problems.append(
                    f"{src}: '{target}' is not a {kind} field"
                    + (did_you_mean(target, known) or f" (known: {', '.join(sorted(known))})")
                )
        targets = list(value.values())
        problems += [
            f"more than one column maps to {name}" for name in IDENTITY_FIELDS if targets.count(name) > 1
        ]
        if join and join not in targets:
            problems.append(f"join: {join} needs a column mapped to {join}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("value_maps", "constants")
    @classmethod
    def _targets_fit_kind(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:
            return value
        known = fields_for_kind(kind)
        unknown = [t for t in value if not t.startswith(("extra.", "xref.")) and t not in known]
        if unknown:
            raise ValueError(f"{', '.join(repr(t) for t in unknown)}: not a {kind} field")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FileSourceConfig:
        if self.sheet is not None and self.format not in ("auto", "xlsx"):
            raise ValueError("sheet only applies to xlsx files")
        self.object_mapping()  # the generic mapping's own checks, in case they grow beyond the ones above
        return self

    def object_mapping(self) -> ObjectMapping:
        """The value mapping; on rows that are not persons the identity columns only join: they drop out."""
        fields = dict(self.fields)
        if self.kind is not FactKind.PERSON:
            fields = {src: target for src, target in fields.items() if target not in IDENTITY_FIELDS}
        return ObjectMapping(
            kind=self.kind,
            fields=fields,
            value_maps=self.value_maps,
            constants=self.constants,
            date_formats=self.date_formats,
        )

    def column_for(self, target: str) -> str | None:
        return next((src for src, mapped in self.fields.items() if mapped == target), None)

    def fingerprint(self) -> str:
        """A short hash of everything that changes how rows map (not `enabled`)."""
        data = self.model_dump(mode="json", exclude={"enabled"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
