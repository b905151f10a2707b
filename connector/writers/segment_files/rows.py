"""Where each member's row sits in a published CSV segment file, so that an incremental run can patch the file
instead of rendering every member again.

The file itself is the record of its rows: the index only says, row by row in file order, whose row it is
(person key), its sort key (the e-mail in lower case, or none) and how many bytes it takes. A run that knows
which members were added, removed or described differently cuts those rows out and puts the new ones in at
their sorted place; every other row keeps its bytes. That gives the same bytes as a full render because a CSV
row's bytes depend only on its own cells (the csv module quotes row by row) and the encodings allowed here
encode each character on its own (the BOM of `utf-8-sig` / `utf-16` belongs to the header, written once).

It is stored compact, so that loading and saving it stay at C speed at millions of rows: a header line, the
person keys and then the e-mails each joined by NUL, and the row sizes as 32-bit integers (an index whose keys
or e-mails hold a NUL is kept as JSON, as indexes were before).

An index names the SHA-256 of the bytes it describes: one that does not describe the file as it is now (a
write that failed half way, a file saved over by hand) is not used, and the writer renders the whole file.
XLSX files are zip archives whose parts cannot be patched row by row: they are always rendered whole.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import csv
import itertools
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from ...atomic_file import replace_atomically

log = structlog.get_logger(__name__)

# Codecs in which every character is encoded on its own (no shift state carried from one row to the next), so
# a row's bytes do not depend on the rows before it. Anything else (utf-7, iso2022_*) is rendered whole.
STATELESS_CODECS = ("utf-8", "utf-16", "utf-32", "iso8859", "cp", "ascii", "mac-", "latin")


def patchable_encoding(encoding: str) -> bool:
    return codecs.lookup(encoding).name.startswith(STATELESS_CODECS)


MAGIC = b"connector segment rows 1\n"
SEPARATOR = "\x00"
NO_EMAIL = "\x01"  # a row of a member without an e-mail


@dataclass(frozen=True)
class RowKey:
    """Who a row belongs to and where it sorts: members without an e-mail last, then e-mail without case,
    then person key (the order `writer.sorted_members` gives)."""

    person_key: str
    email: str | None  # in lower case

    def order(self) -> tuple[bool, str, str]:
        return (self.email is None, self.email or "", self.person_key)


class RowIndex:
    """A CSV segment file's header length and, per row in file order, its person key, sort e-mail and size."""

    def __init__(
        self, file: str, header: int, keys: list[str], emails: list[str | None], sizes: list[int]
    ) -> None:
        self.file = file  # sha256 of the bytes described
        self.header = header
        self.keys = keys
        self.emails = emails
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.keys)

    def to_json(self) -> str:
        return json.dumps(
            {
                "file": self.file,
                "header": self.header,
                "keys": self.keys,
                "emails": self.emails,
                "sizes": self.sizes,
            },
            separators=(",", ":"),
        )

    def to_bytes(self) -> bytes:
        """The index as stored (see the module's note); JSON when a key or an e-mail holds a separator."""
        emails = [NO_EMAIL if e is None else e for e in self.emails]
        if any(SEPARATOR in k for k in self.keys) or any(
            SEPARATOR in e or e == NO_EMAIL for e in self.emails if e
        ):
            return self.to_json().encode("utf-8")
        keys = SEPARATOR.join(self.keys).encode("utf-8", "surrogatepass")
        mails = SEPARATOR.join(emails).encode("utf-8", "surrogatepass")
        head = {
            "file": self.file,
            "header": self.header,
            "rows": len(self.keys),
            "keys": len(keys),
            "emails": len(mails),
        }
        sizes = struct.pack(f"<{len(self.sizes)}I", *self.sizes)
        return MAGIC + json.dumps(head, separators=(",", ":")).encode() + b"\n" + keys + mails + sizes

    @classmethod
    def from_bytes(cls, data: bytes) -> RowIndex:
        if not data.startswith(MAGIC):
            return cls.from_json(data.decode("utf-8"))
        end = data.index(b"\n", len(MAGIC))
        head = json.loads(data[len(MAGIC) : end])
        rows, k, e = int(head["rows"]), int(head["keys"]), int(head["emails"])
        start = end + 1
        if len(data) != start + k + e + 4 * rows:
            raise ValueError("row index is cut short or too long")
        keys: list[str] = []
        emails: list[str | None] = []
        if rows:
            keys = data[start : start + k].decode("utf-8", "surrogatepass").split(SEPARATOR)
            mails = data[start + k : start + k + e].decode("utf-8", "surrogatepass").split(SEPARATOR)
            emails = [None if m == NO_EMAIL else m for m in mails]
        sizes = list(struct.unpack_from(f"<{rows}I", data, start + k + e))
        index = cls(str(head["file"]), int(head["header"]), keys, emails, sizes)
        if not (len(index.keys) == len(index.emails) == len(index.sizes) == rows):
            raise ValueError("row index lists differ in length")
        return index

    @classmethod
    def from_json(cls, text: str) -> RowIndex:
        data = json.loads(text)
        index = cls(str(data["file"]), int(data["header"]), data["keys"], data["emails"], data["sizes"])
        if not (len(index.keys) == len(index.emails) == len(index.sizes)):
            raise ValueError("row index lists differ in length")
        return index

    def content_size(self) -> int:
        return self.header + sum(self.sizes)

    def order_of(self, row: int) -> tuple[bool, str, str]:
        email = self.emails[row]
        return (email is None, email or "", self.keys[row])


class RowEncoder:
    """Renders CSV rows one at a time as the bytes they take in the file after its header."""

    def __init__(self, delimiter: str, encoding: str) -> None:
        self._parts: list[str] = []
        self._csv = csv.writer(self, delimiter=delimiter, lineterminator="\r\n")
        self._encoder = codecs.getincrementalencoder(encoding)(errors="replace")

    def write(self, text: str) -> int:  # the csv writer's file: it writes each row in one call
        self._parts.append(text)
        return len(text)

    def header(self, header: Sequence[str]) -> bytes:
        """The header's bytes (with the BOM, if the encoding has one); call it once, before any row."""
        return self.row(header)

    def row(self, cells: Sequence[str]) -> bytes:
        self._csv.writerow(cells)
        text = "".join(self._parts)
        self._parts.clear()
        return self._encoder.encode(text)


def full_render(
    header: Sequence[str],
    rows: Iterable[tuple[RowKey, Sequence[str]]],
    delimiter: str,
    encoding: str,
    file_digest: str = "",
) -> tuple[bytes, RowIndex]:
    """The file's bytes from every row (already sorted) and its index (its `file` set by the caller)."""
    encoder = RowEncoder(delimiter, encoding)
    head = encoder.header(header)
    pieces = [head]
    keys: list[str] = []
    emails: list[str | None] = []
    sizes: list[int] = []
    for key, cells in rows:
        data = encoder.row(cells)
        pieces.append(data)
        keys.append(key.person_key)
        emails.append(key.email)
        sizes.append(len(data))
    return b"".join(pieces), RowIndex(file_digest, len(head), keys, emails, sizes)


def patched(
    content: bytes,
    index: RowIndex,
    header: Sequence[str],
    drop: set[str],
    new_rows: Sequence[tuple[RowKey, Sequence[str]]],
    delimiter: str,
    encoding: str,
) -> tuple[bytes, RowIndex]:
    """`content` (described by `index`) without the rows of the people in `drop`, with `new_rows` (whose
    people are all in `drop`) in their sorted place; the same bytes a full render of the result gives."""
    encoder = RowEncoder(delimiter, encoding)
    encoder.header(header)  # the encoder's state after the header: no second BOM in the rows
    inserts = sorted(new_rows, key=lambda item: item[0].order())
    old = range(len(index))
    # (row position, 0 = insert before it / 1 = drop it, rank among inserts)
    events: list[tuple[int, int, int]] = [
        (bisect.bisect_left(old, key.order(), key=index.order_of), 0, rank)
        for rank, (key, _) in enumerate(inserts)
    ]
    events += [(row, 1, 0) for row, person in enumerate(index.keys) if person in drop]
    events.sort()
    offsets = list(itertools.accumulate(index.sizes, initial=index.header))  # where each row starts
    pieces: list[bytes] = [content[: index.header]]
    keys: list[str] = []
    emails: list[str | None] = []
    sizes: list[int] = []
    cursor = 0  # the first old row not yet copied
    for row, kind, rank in events:
        pieces.append(content[offsets[cursor] : offsets[row]])
        keys += index.keys[cursor:row]
        emails += index.emails[cursor:row]
        sizes += index.sizes[cursor:row]
        if kind == 0:
            key, cells = inserts[rank]
            data = encoder.row(cells)
            pieces.append(data)
            keys.append(key.person_key)
            emails.append(key.email)
            sizes.append(len(data))
            cursor = row
        else:
            cursor = row + 1
    pieces.append(content[offsets[cursor] :])
    keys += index.keys[cursor:]
    emails += index.emails[cursor:]
    sizes += index.sizes[cursor:]
    return b"".join(pieces), RowIndex("", index.header, keys, emails, sizes)


class RowIndexes:
    """The row indexes of one target's files, kept beside the state like the published record."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _path(self, file: Path) -> Path | None:
        return None if self.directory is None else self.directory / f"{file.name}.rows"

    def _legacy(self, file: Path) -> Path | None:
        """Where indexes were kept as JSON: removed with the index (it names people: an erasure drops it)."""
        return None if self.directory is None else self.directory / f"{file.name}.rows.json"

    def load(self, file: Path, digest: str) -> RowIndex | None:
        """The index of `file` when it describes exactly the bytes with this digest, else None."""
        path = self._path(file)
        if path is None:
            return None
        try:
            index = RowIndex.from_bytes(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, struct.error) as exc:
            # only ever saves work: the file is rendered whole and the index written again
            log.warning("segment_files.rows.unreadable", file=str(path), error=str(exc))
            return None
        return index if index.file == digest else None

    def save(self, file: Path, index: RowIndex) -> None:
        path = self._path(file)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, index.to_bytes())
        self._drop_legacy(file)

    def drop(self, file: Path) -> None:
        path = self._path(file)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._drop_legacy(file)

    def _drop_legacy(self, file: Path) -> None:
        legacy = self._legacy(file)
        if legacy is not None:
            with contextlib.suppress(FileNotFoundError):
                legacy.unlink()
