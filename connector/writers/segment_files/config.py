"""The YAML of a segment_files target (folder, format, delimiter, encoding, columns, change-log retention) and
which segment names can be file names; no writing here."""

from __future__ import annotations

import codecs
import re
import unicodedata
from typing import Literal

from pydantic import Field, field_validator

from ...errors import ConfigError
from ...plugin_config import WriterConfigBase
from ...schema import PERSON_FIELDS
from ...suggest import did_you_mean

# Besides every person schema field (and `extra.<name>`): what the target knows of the member itself.
MEMBER_COLUMNS = ("stage", "label", "person_key", "refs")
DEFAULT_COLUMNS: list[str] = [
    "email",
    "first_name",
    "last_name",
    "company",
    "stage",
    "label",
    "person_key",
]
# A segment's file name is derived from its name: ASCII letters, digits, '_', '-' and '.', every other run of
# characters (spaces, '/', accents that do not fold to ASCII) one '-', no leading or trailing '.' or '-'
# (Windows drops a trailing dot). A name that already is such a file name (`win-back`) keeps it unchanged.
UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
FILE_STEM_MAX = 64
CHANGES_STEM_SUFFIX = ".changes"
CHANGES_SUFFIX = CHANGES_STEM_SUFFIX + ".csv"
# The change log's own columns, before the configured ones: when, which run, added or removed.
HISTORY_COLUMNS = ("date", "run_id", "change")
# Cells starting with these are run as formulas by spreadsheets (CSV injection); CRM data is not trusted.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class SegmentFilesConfig(WriterConfigBase):
    type: Literal["segment_files"]
    directory: str  # relative to the YAML file
    format: Literal["csv", "xlsx"] = "csv"
    # How Excel opens a CSV depends on the computer's locale: `european` (NL, BE, DE, FR: ';' between columns,
    # ',' in numbers) or `english` (',' between columns, '.' in numbers). `delimiter` overrides the former.
    excel: Literal["european", "english"] = "european"
    delimiter: str | None = None
    encoding: str = "utf-8-sig"
    columns: list[str] = Field(default_factory=lambda: list(DEFAULT_COLUMNS))
    escape_formulas: bool = True
    # the change log keeps one row per add and remove for this many days (by the run's date), then drops it
    history_days: int = Field(default=90, ge=1, le=3660)

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("directory must name a directory")
        return value.strip()

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = {"comma": ",", "semicolon": ";"}.get(value, value)
        value = {"tab": "\t", "\\t": "\t"}.get(value, value)
        if len(value) != 1 or value in '"\r\n':
            raise ValueError(f"delimiter must be one character such as ; , or tab, not {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding '{value}'") from None
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("columns needs at least one column")
        if len(set(value)) != len(value):
            raise ValueError("columns lists a column twice")
        known = [*PERSON_FIELDS, *MEMBER_COLUMNS]
        for column in value:
            if column in HISTORY_COLUMNS:
                raise ValueError(f"column '{column}' is the change log's own column: leave it out")
            extra = column.removeprefix("extra.")
            if column not in known and not (extra != column and extra.strip()):
                raise ValueError(
                    f"'{column}' is not a column: a person schema field, extra.<name>, "
                    f"{', '.join(MEMBER_COLUMNS)}{did_you_mean(column, known)}"
                )
        return value

    @property
    def csv_delimiter(self) -> str:
        return self.delimiter or {"european": ";", "english": ","}[self.excel]

    @property
    def decimal_mark(self) -> str:
        """The decimal mark of numbers in CSV cells: what Excel in the chosen locale reads as a number."""
        return {"european": ",", "english": "."}[self.excel]

    @property
    def suffix(self) -> str:
        return f".{self.format}"


def segment_file_stem(name: str) -> str:
    """The file name (without `.csv`) of segment `name`: `Nurture newsletter` -> `Nurture-newsletter`,
    `Klanten België` -> `Klanten-Belgie`; ConfigError when nothing usable is left or it would read as another
    segment's changes file."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem = UNSAFE_RUN.sub("-", folded).strip("-.")[:FILE_STEM_MAX].rstrip("-.")
    if not stem or stem.lower().endswith(CHANGES_STEM_SUFFIX):
        raise ConfigError(
            f"segment '{name}' gives no usable file name for segment_files (it needs letters or digits, and "
            "must not end in '.changes'): rename it"
        )
    return stem


def check_segment_name(name: str) -> None:
    """ConfigError when segment `name` cannot be written as a file."""
    segment_file_stem(name)
