"""The YAML of a segment_files target (folder, delimiter, encoding, columns) and which segment names can be
file names; no writing here."""

from __future__ import annotations

import codecs
import re
import unicodedata
from typing import Literal

from pydantic import Field, field_validator

from ...errors import ConfigError
from ...plugin_config import WriterConfigBase

Column = Literal["email", "first_name", "last_name", "company", "stage", "label", "person_key", "refs"]
DEFAULT_COLUMNS: list[Column] = [
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
CHANGES_SUFFIX = ".changes.csv"
# Cells starting with these are run as formulas by spreadsheets (CSV injection); CRM data is not trusted.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class SegmentFilesConfig(WriterConfigBase):
    type: Literal["segment_files"]
    directory: str  # relative to the YAML file
    delimiter: str = ";"
    encoding: str = "utf-8-sig"
    columns: list[Column] = Field(default_factory=lambda: list(DEFAULT_COLUMNS))
    escape_formulas: bool = True

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("directory must name a directory")
        return value.strip()

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
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
    def _columns(cls, value: list[Column]) -> list[Column]:
        if not value:
            raise ValueError("columns needs at least one column")
        if len(set(value)) != len(value):
            raise ValueError("columns lists a column twice")
        return value


def segment_file_stem(name: str) -> str:
    """The file name (without `.csv`) of segment `name`: `Nurture newsletter` -> `Nurture-newsletter`,
    `Klanten België` -> `Klanten-Belgie`; ConfigError when nothing usable is left or it would read as another
    segment's changes file."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem = UNSAFE_RUN.sub("-", folded).strip("-.")[:FILE_STEM_MAX].rstrip("-.")
    if not stem or stem.lower().endswith(".changes"):
        raise ConfigError(
            f"segment '{name}' gives no usable file name for segment_files (it needs letters or digits, and "
            "must not end in '.changes'): rename it"
        )
    return stem


def check_segment_name(name: str) -> None:
    """ConfigError when segment `name` cannot be written as a file."""
    segment_file_stem(name)
