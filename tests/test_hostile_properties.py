"""Property tests: whatever bytes a file holds and whatever values a record carries, only the documented
error types leave the readers and mappers (ConfigError for a whole file, RecordError for one row). Anything
else would end a run as a crash (exit 1).
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_file_source import ctx

from connector.context import PluginEnv
from connector.errors import ConfigError, RecordError
from connector.mappers.fields import ObjectMapping, coerce, map_fields
from connector.mappers.salesforce import OrgMeanings
from connector.mappers.salesforce import map_record as map_sf
from connector.mappers.vtiger import VtigerModuleSpec
from connector.mappers.vtiger import map_record as map_vt
from connector.schema import FactKind, FieldType
from connector.sources.files.config import FileSourceConfig
from connector.sources.files.source import FileSource

pytestmark = pytest.mark.reliability("Hostile input")

STAMP = "2026-10-01T08:30:00.000+0000"
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# bytes a hostile CSV / JSON Lines file is made of: structure characters, quotes, odd encodings, big digits
PIECES = st.sampled_from(
    [b";", b",", b"\t", b'"', b"\n", b"\r\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\xe9", b"1" * 5000,
     b"NaN", b"1e999", b"[" * 50, b"{", b"}", b":", b"E-mail", b"email", b"a@b.nl", b"=HYPERLINK(\"x\")@y.nl",
     b"31-12-2026", b"x" * 70_000, b"\x07"]
)  # fmt: skip
HOSTILE_BYTES = st.one_of(st.binary(max_size=400), st.lists(PIECES | st.binary(max_size=20)).map(b"".join))
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["NaN", "-Infinity", "1" * 5000, "9" * 400, "1,5", "0001-01-01T00:00:00+01:00"])
    | st.dates()
    | st.datetimes(timezones=st.none() | st.timezones()),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
PERSON = ObjectMapping(
    fields={
        "a": "email",
        "b": "web_visits",
        "c": "review_score",
        "d": "last_visit",
        "e": "opted_out",
        "f": "first_name",
        "g": "extra.note",
        "h": "lead_status",
    },
    value_maps={"lead_status": {"Working": "working"}},
)


def file_source(tmp_path: Path, name: str, **extra: Any) -> FileSource:
    cfg = FileSourceConfig.model_validate(
        {
            "name": "f",
            "type": "file",
            "path": name,
            "kind": "enrichment",
            "fields": {
                "E-mail": "email",
                "visits": "web_visits",
                "score": "review_score",
                "last": "last_visit",
            },
            **extra,
        }
    )
    return FileSource.from_config(cfg, PluginEnv(base_dir=tmp_path))


def read_and_map(src: FileSource) -> None:
    """Read every row and map it; the documented errors are the only way out."""
    try:
        for batch in src.read({}, ctx()):
            for raw in batch.records:
                try:
                    src.map(batch.object, raw)
                except RecordError:
                    pass
    except ConfigError:
        pass


@pytest.mark.parametrize("name", ["x.csv", "x.jsonl", "x.xlsx"])
@SETTINGS
@given(data=HOSTILE_BYTES)
def test_arbitrary_bytes_in_a_file_end_as_config_or_record_errors(
    tmp_path: Path, name: str, data: bytes
) -> None:
    (tmp_path / name).write_bytes(b"E-mail;visits;score;last\n" + data if name == "x.csv" else data)
    read_and_map(file_source(tmp_path, name))


@SETTINGS
@given(entries=st.dictionaries(st.sampled_from(["[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml",
                                                "xl/_rels/workbook.xml.rels", "_rels/.rels", "xl/styles.xml"]),
                               HOSTILE_BYTES, min_size=1))  # fmt: skip
def test_xlsx_ish_zip_files_end_as_config_errors(tmp_path: Path, entries: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, content in entries.items():
            archive.writestr(member, content)
    (tmp_path / "x.xlsx").write_bytes(buffer.getvalue())
    read_and_map(file_source(tmp_path, "x.xlsx"))


@SETTINGS
@given(raw=st.dictionaries(st.sampled_from("abcdefgh"), VALUES))
def test_arbitrary_values_through_the_generic_mapper(raw: dict[str, Any]) -> None:
    try:
        mapped = map_fields(raw, PERSON)
    except RecordError:
        return
    for name in ("web_visits", "review_score"):
        if name in mapped.values:
            assert math.isfinite(mapped.values[name]) and abs(mapped.values[name]) < 2**63


NUMBERS = (
    st.integers()
    | st.floats()
    | st.text(alphabet="0123456789.,-+eE naifINFTY", max_size=60)
    | st.sampled_from(["NaN", "Infinity", "-inf", "1" * 5000, "9" * 400, "1e999", "1,5"])
    | st.integers(min_value=10**300, max_value=10**400).map(str)
)


@SETTINGS
@given(raw=NUMBERS, ftype=st.sampled_from([FieldType.INT, FieldType.FLOAT]))
def test_a_number_is_finite_and_in_range_or_a_readable_value_error(raw: Any, ftype: FieldType) -> None:
    try:
        value = coerce(raw, ftype, [])
    except ValueError:
        return
    assert value is None or (math.isfinite(value) and abs(value) < 2**63)


@SETTINGS
@given(email=VALUES, amount=VALUES, stamp=VALUES, status=VALUES)
def test_arbitrary_values_through_the_crm_mappers(email: Any, amount: Any, stamp: Any, status: Any) -> None:
    sf_lead = {"Id": "00Q1", "SystemModstamp": stamp, "Email": email, "Status": status, "IsConverted": status}
    sf_mapping = ObjectMapping(fields={"Email": "email", "Status": "lead_status"})
    vt_lead = {"id": "10x1", "modifiedtime": stamp, "email": email, "leadstatus": status}
    vt_spec = VtigerModuleSpec(source="vt", module="Leads", mapping=ObjectMapping(fields={"email": "email"}))
    opp = {"Id": "006A", "SystemModstamp": STAMP, "Amount": amount, "StageName": status}
    opp_mapping = ObjectMapping(kind=FactKind.OPPORTUNITY, fields={"Amount": "opportunity_amount"})
    for call in (
        lambda: map_sf("sf", "Lead", sf_lead, sf_mapping, OrgMeanings()),
        lambda: map_sf("sf", "Opportunity", opp, opp_mapping, OrgMeanings()),
        lambda: map_vt(vt_lead, vt_spec),
    ):
        try:
            call()
        except RecordError:
            pass


@pytest.mark.parametrize(
    "email", ['=HYPERLINK("x")@y.nl', "ann\x00@x.nl", "ann\x1b@x.nl", "ann@x.nl\r\nBcc: eve@x.nl", "ann@"]
)
def test_a_crm_record_with_a_hostile_email_loads_without_it(email: str) -> None:
    """A CRM record with a hostile e-mail keeps its stage label but never an identity key from the e-mail"""
    sf_mapping = ObjectMapping(fields={"Email": "email"})
    sf = map_sf(
        "sf", "Lead", {"Id": "00Q1", "SystemModstamp": STAMP, "Email": email}, sf_mapping, OrgMeanings()
    )
    vt_spec = VtigerModuleSpec(source="vt", module="Leads", mapping=ObjectMapping(fields={"email": "email"}))
    vt = map_vt({"id": "10x1", "email": email}, vt_spec)
    for fact in (sf.fact, vt.fact):
        assert "email" not in fact.values
        assert not [k for k in fact.keys if k.startswith("email:")]


def test_a_valid_crm_email_keeps_its_identity_key() -> None:
    vt_spec = VtigerModuleSpec(source="vt", module="Leads", mapping=ObjectMapping(fields={"email": "email"}))
    fact = map_vt({"id": "10x1", "email": " Ann.Smith@Example.COM "}, vt_spec).fact
    assert "email:ann.smith@example.com" in fact.keys
