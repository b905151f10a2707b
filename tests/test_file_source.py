from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pydantic import ValidationError

from connector.context import PluginEnv, RunContext
from connector.errors import ConfigError, RecordError
from connector.registry import source_plugins
from connector.schema import Fact, FactKind, RecordRef, encode_value
from connector.sources.base import Batch
from connector.sources.files.config import FileSourceConfig
from connector.sources.files.source import GONE, FileSource

DATA = Path(__file__).parent / "data" / "files"
CONTRACT_FIELDS = {"E-mail": "email", "Provider": "competitor", "Einddatum": "contract_end"}


def ctx() -> RunContext:
    return RunContext(as_of=dt.date(2026, 1, 15), started_at=dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC))


def config(**overrides: Any) -> FileSourceConfig:
    data: dict[str, Any] = {
        "name": "competitor_contracts",
        "type": "file",
        "path": "contracts.csv",
        "kind": "contract",
        "fields": CONTRACT_FIELDS,
        "date_formats": ["%d-%m-%Y", "%Y-%m-%d"],
    }
    data.update(overrides)
    return FileSourceConfig.model_validate(data)


def source(base: Path, **overrides: Any) -> FileSource:
    cfg = config(**overrides)
    return FileSource.from_config(cfg, PluginEnv(base_dir=base))


def read_all(src: FileSource, cursors: dict[str, str] | None = None) -> list[Batch]:
    return list(src.read(cursors or {}, ctx()))


def map_all(src: FileSource, batches: list[Batch]) -> tuple[list[Fact], list[str]]:
    facts, rejected = [], []
    for batch in batches:
        for raw in batch.records:
            try:
                facts.append(src.map(batch.object, raw))
            except RecordError as exc:
                rejected.append(str(exc))
    return facts, rejected


CONTRACTS = (
    "E-mail;Provider;Einddatum\r\n"
    "Ann@X.nl ;Eneco;31-12-2026\r\n"  # line 2
    "bob@x.nl;Vattenfall;31-02-2026\r\n"  # line 3: no such date
    ";Essent;01-03-2026\r\n"  # line 4: no join key
    "cid@x.nl;Budget Energie;2026-06-30\r\n"  # line 5
    "ann@x.nl;Essent;01-02-2027\r\n"  # line 6: a second contract of ann
    "geen-mail;Eneco;01-02-2027\r\n"  # line 7: not an e-mail address
)


def test_contract_file_loads_and_rejects_bad_rows_with_file_line_and_reason(tmp_path: Path) -> None:
    (tmp_path / "contracts.csv").write_text(CONTRACTS, encoding="utf-8")
    src = source(tmp_path)
    batches = read_all(src)
    facts, rejected = map_all(src, batches)

    assert [f.ref for f in facts] == [
        RecordRef("competitor_contracts", "contracts.csv", "ann@x.nl"),
        RecordRef("competitor_contracts", "contracts.csv", "cid@x.nl"),
        RecordRef("competitor_contracts", "contracts.csv", "ann@x.nl#2"),
    ]
    ann = facts[0]
    assert ann.kind is FactKind.CONTRACT
    assert ann.attach == ["email:ann@x.nl"] and ann.keys == []
    assert ann.values == {"competitor": "Eneco", "contract_end": dt.date(2026, 12, 31)}
    assert ann.modified_at is None
    assert facts[1].values["contract_end"] == dt.date(2026, 6, 30)
    assert rejected[0].startswith(
        "contracts.csv:3: field Einddatum -> contract_end: '31-02-2026' is not a date"
    )
    assert rejected[1] == "contracts.csv:4: missing email (column E-mail)"
    assert rejected[2].startswith("contracts.csv:7: column E-mail: 'geen-mail' is not an e-mail address (")
    assert len(rejected) == 3

    last = batches[-1]
    assert last.object == "contracts.csv" and last.cursor
    # live ids include the rejected rows, so their rejection stays attached to something that exists
    assert last.live_ids == {"ann@x.nl", "bob@x.nl", "line-4", "cid@x.nl", "ann@x.nl#2", "geen-mail"}


def test_rejection_codes(tmp_path: Path) -> None:
    (tmp_path / "contracts.csv").write_text(CONTRACTS, encoding="utf-8")
    src = source(tmp_path)
    codes = []
    for batch in read_all(src):
        for raw in batch.records:
            try:
                src.map(batch.object, raw)
            except RecordError as exc:
                codes.append(exc.code)
    assert codes == ["BAD_VALUE", "MISSING_KEY", "BAD_VALUE"]


def test_unchanged_file_yields_nothing_and_a_changed_one_is_a_full_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "contracts.csv"
    path.write_text(CONTRACTS, encoding="utf-8")
    src = source(tmp_path)
    first = read_all(src)
    cursors = {first[-1].object: str(first[-1].cursor)}
    assert read_all(src, cursors) == []

    path.write_text(CONTRACTS.replace("cid@x.nl;Budget Energie;2026-06-30\r\n", ""), encoding="utf-8")
    again = read_all(src, cursors)
    assert again[-1].cursor != cursors["contracts.csv"]
    assert "cid@x.nl" not in (again[-1].live_ids or set())
    assert sum(len(b.records) for b in again) == 5


def test_a_mapping_change_reads_the_same_file_again(tmp_path: Path) -> None:
    (tmp_path / "contracts.csv").write_text(CONTRACTS, encoding="utf-8")
    first = read_all(source(tmp_path))
    cursors = {first[-1].object: str(first[-1].cursor)}
    changed = source(tmp_path, fields={**CONTRACT_FIELDS, "Provider": "extra.provider"})
    assert read_all(changed, cursors) != []


def test_ids_are_stable_across_runs_and_repeats_are_suffixed(tmp_path: Path) -> None:
    (tmp_path / "contracts.csv").write_text(CONTRACTS, encoding="utf-8")
    one = read_all(source(tmp_path))[-1].live_ids
    two = read_all(source(tmp_path))[-1].live_ids
    assert one == two and "ann@x.nl#2" in (one or set())


def test_id_column_names_rows(tmp_path: Path) -> None:
    (tmp_path / "contracts.csv").write_text(
        "Nr;E-mail;Provider;Einddatum\n7;ann@x.nl;Eneco;01-01-2027\n;bob@x.nl;Essent;01-01-2027\n7;c@x.nl;X;\n"
    )
    src = source(tmp_path, id_column="Nr")
    facts, rejected = map_all(src, read_all(src))
    assert [f.ref.id for f in facts] == ["7", "bob@x.nl", "7#2"]
    assert rejected == []


def test_missing_column_is_a_config_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "contracts.csv").write_text("Email;Provider;Einddatum\nann@x.nl;Eneco;01-01-2027\n")
    with pytest.raises(ConfigError, match=r"contracts\.csv has no column 'E-mail'"):
        read_all(source(tmp_path))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"sources\.competitor_contracts\.path: contracts\.csv .* not found"
    ):
        read_all(source(tmp_path))


def test_glob_reads_every_match_and_a_vanished_file_empties_its_object(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for month, emails in (("01", ["ann@x.nl", "bob@x.nl"]), ("02", ["cid@x.nl"])):
        rows = "".join(f'{{"mail": "{e}", "visits": 2, "day": "2026-{month}-03"}}\n' for e in emails)
        (tmp_path / "data" / f"visits-2026-{month}.jsonl").write_text(rows)
    src = source(
        tmp_path,
        name="visits",
        path="data/visits-*.jsonl",
        kind="enrichment",
        fields={"mail": "email", "visits": "web_visits", "day": "last_visit"},
    )
    batches = read_all(src)
    assert [b.object for b in batches] == ["data/visits-2026-01.jsonl", "data/visits-2026-02.jsonl"]
    facts, rejected = map_all(src, batches)
    assert rejected == []
    assert facts[0].kind is FactKind.ENRICHMENT
    assert facts[0].attach == ["email:ann@x.nl"]
    assert facts[0].values == {"web_visits": 2, "last_visit": dt.date(2026, 1, 3)}

    cursors = {b.object: str(b.cursor) for b in batches}
    (tmp_path / "data" / "visits-2026-01.jsonl").unlink()
    gone = read_all(src, cursors)
    assert gone == [Batch(object="data/visits-2026-01.jsonl", cursor=GONE, live_ids=set())]
    cursors["data/visits-2026-01.jsonl"] = GONE
    assert read_all(src, cursors) == []


def test_glob_matching_nothing_yields_nothing(tmp_path: Path) -> None:
    assert read_all(source(tmp_path, path="data/*.csv")) == []


def test_jsonl_malformed_line_is_rejected_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "v.jsonl").write_text(
        '{"mail": "ann@x.nl", "n": "3"}\n{"mail": "bob@x.nl", "n": \n{"mail": "cid@x.nl", "n": "x"}\n'
        '{"mail": "dan@x.nl", "n": 4, "extra": {"tier": "gold"}}\n'
    )
    src = source(
        tmp_path,
        path="v.jsonl",
        kind="enrichment",
        fields={"mail": "email", "n": "web_visits", "extra.tier": "extra.tier"},
    )
    facts, rejected = map_all(src, read_all(src))
    assert [f.attach for f in facts] == [["email:ann@x.nl"], ["email:dan@x.nl"]]
    assert facts[1].extra == {"tier": "gold"}  # dotted names reach into nested JSON
    assert rejected[0].startswith("v.jsonl:2: invalid JSON")
    assert rejected[1] == "v.jsonl:3: field n -> web_visits: 'x' is not a number"


def test_person_rows_carry_keys(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(
        "Mail,Klant,Voornaam,Nieuwsbrief\nANN@x.nl,K-1,Ann,ja\nbob@x.nl,,Bob,nee\n", encoding="utf-8"
    )
    src = source(
        tmp_path,
        name="events",
        path="people.csv",
        kind="person",
        fields={
            "Mail": "email",
            "Klant": "external_id",
            "Voornaam": "first_name",
            "Nieuwsbrief": "newsletter",
        },
    )
    facts, rejected = map_all(src, read_all(src))
    assert rejected == []
    ann, bob = facts
    assert ann.keys == ["events:people.csv:ann@x.nl", "email:ann@x.nl", "ext:K-1"]
    assert ann.values == {"email": "ann@x.nl", "external_id": "K-1", "first_name": "Ann", "newsletter": True}
    assert bob.keys == ["events:people.csv:bob@x.nl", "email:bob@x.nl"]
    assert ann.attach == []


def test_join_by_external_id(tmp_path: Path) -> None:
    (tmp_path / "opps.csv").write_text("Klant;Bedrag;Fase\nK-1;1.250,50;Offerte\n;10;Offerte\n")
    src = source(
        tmp_path,
        path="opps.csv",
        kind="opportunity",
        join="external_id",
        fields={"Klant": "external_id", "Bedrag": "opportunity_amount", "Fase": "opportunity_stage"},
        value_maps={"opportunity_stage": {"Offerte": "proposal"}},
    )
    facts, rejected = map_all(src, read_all(src))
    assert facts[0].attach == ["ext:K-1"]
    assert facts[0].values == {"opportunity_amount": 1250.5, "opportunity_stage": "proposal"}
    assert rejected == ["opps.csv:3: missing external_id (column Klant)"]


def test_cp1252_file_with_dutch_dates(tmp_path: Path) -> None:
    text = "E-mail;Provider;Einddatum\r\nm@x.nl;Müller € Energie;01-04-2026\r\n"
    (tmp_path / "contracts.csv").write_bytes(text.encode("cp1252"))
    src = source(tmp_path)
    facts, _ = map_all(src, read_all(src))
    assert facts[0].values == {"competitor": "Müller € Energie", "contract_end": dt.date(2026, 4, 1)}


def test_xlsx_source(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Blad1"
    book.create_sheet("Contracten")
    ws = book["Contracten"]
    ws.append(["E-mail", "Provider", "Einddatum"])
    ws.append(["ann@x.nl", "Eneco", dt.datetime(2026, 12, 31)])
    ws.append(["bob@x.nl", "Essent", "niet bekend"])
    book.save(tmp_path / "contracts.xlsx")
    src = source(tmp_path, path="contracts.xlsx", sheet="Contracten")
    facts, rejected = map_all(src, read_all(src))
    assert facts[0].values["contract_end"] == dt.date(2026, 12, 31)
    assert len(rejected) == 1 and rejected[0].startswith("contracts.xlsx:3: field Einddatum")


def test_large_file_comes_in_chunks_with_the_cursor_and_live_ids_on_the_last(tmp_path: Path) -> None:
    rows = "".join(f"p{i}@x.nl;Eneco;01-01-2027\n" for i in range(25))
    (tmp_path / "contracts.csv").write_text("E-mail;Provider;Einddatum\n" + rows)
    src = source(tmp_path)
    src.chunk_rows = 10
    batches = read_all(src)
    assert [len(b.records) for b in batches] == [10, 10, 5]
    assert [b.cursor is None for b in batches] == [True, True, False]
    assert [b.live_ids is None for b in batches] == [True, True, False]
    assert len(batches[-1].live_ids or ()) == 25


def test_empty_file_is_an_empty_snapshot(tmp_path: Path) -> None:
    (tmp_path / "contracts.csv").write_text("E-mail;Provider;Einddatum\n")
    batches = read_all(source(tmp_path))
    assert len(batches) == 1 and batches[0].records == [] and batches[0].live_ids == set()


def test_committed_sample_file(tmp_path: Path) -> None:
    src = source(DATA, path="competitor_contracts.csv")
    facts, rejected = map_all(src, read_all(src))
    assert len(facts) == 4
    assert rejected == [
        "competitor_contracts.csv:5: field Einddatum -> contract_end: '2026-13-01' is not a date"
        " in any of the formats %d-%m-%Y, %Y-%m-%d"
    ]
    assert {f.values["competitor"] for f in facts} == {"Eneco", "Vattenfall", "Essent", "Greenchoice"}


def test_relative_paths_resolve_against_the_yaml_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "contracts.csv").write_text(CONTRACTS)
    monkeypatch.chdir(tmp_path.parent)
    assert read_all(source(tmp_path))[-1].object == "contracts.csv"
    monkeypatch.chdir(tmp_path)
    no_base = FileSource.from_config(config(), PluginEnv())
    assert read_all(no_base)[-1].object == "contracts.csv"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fields": {"Provider": "competitor"}}, "join: email needs a column mapped to email"),
        ({"kind": "contract", "value_maps": {"lead_status": {}}}, "'lead_status': not a contract field"),
        ({"fields": {**CONTRACT_FIELDS, "Mail2": "email"}}, "more than one column maps to email"),
        ({"format": "csv", "sheet": "Blad1"}, "sheet only applies to xlsx"),
        (
            {"fields": {**CONTRACT_FIELDS, "Fase": "lead_status"}},
            "'lead_status' is not a contract field",
        ),
        ({"encoding": "klingon"}, "unknown encoding"),
        ({"delimiter": ";;"}, "delimiter must be auto or one character"),
        ({"format": "xls"}, "format"),
        ({"kind": "account"}, "kind"),
        ({"join": "phone"}, "join"),
        ({"colour": "red"}, "colour"),
        ({"date_formats": ["dd-mm-yyyy"]}, "strptime"),
        ({"path": "  "}, "path must name a file"),
    ],
)
def test_config_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**overrides)


def test_tab_alias_and_registry_entry() -> None:
    assert config(delimiter="tab").delimiter == "\t"
    assert source_plugins()["file"].config is FileSourceConfig


def test_mapping_for_and_close(tmp_path: Path) -> None:
    src = source(tmp_path)
    mapping = src.mapping_for("contracts.csv")
    assert mapping is not None and mapping.kind is FactKind.CONTRACT
    assert "E-mail" not in mapping.fields  # the join column joins; it is not a contract value
    src.close()


def test_a_rejected_xlsx_row_maps_the_same_after_a_trip_through_json(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["E-mail", "Provider", "Einddatum"])
    book.active.append(["ann@x.nl", "Eneco", dt.datetime(2026, 12, 31)])
    book.save(tmp_path / "c.xlsx")
    src = source(tmp_path, path="c.xlsx")
    raw = read_all(src)[-1].records[0]
    stored = json.loads(json.dumps({k: encode_value(v) for k, v in raw.items()}))
    assert src.map("c.xlsx", stored) == src.map("c.xlsx", raw)
