"""The incremental cursor's own estimate of its next read: the records that read returns again."""

from __future__ import annotations

import datetime as dt

from connector.sources.salesforce.cursor import MAX_SEEN, Cursor

STAMP = dt.datetime(2026, 11, 23, 9, 15, tzinfo=dt.UTC)
OVERLAP = dt.timedelta(seconds=60)


def test_the_records_in_the_window_are_counted_beyond_what_seen_keeps() -> None:
    cursor = Cursor()
    older = STAMP - dt.timedelta(minutes=10)
    cursor.note("old", older, STAMP + dt.timedelta(hours=1))
    for n in range(MAX_SEEN + 500):  # a writing run's own labels, read back 30 s after it
        cursor.note(f"00Q{n:015d}", STAMP, STAMP + dt.timedelta(hours=1))
    cursor.settle(STAMP + dt.timedelta(seconds=30), OVERLAP, complete=True)
    text = cursor.dump(OVERLAP)
    assert text is not None
    loaded = Cursor.parse(text)
    assert len(loaded.seen) == MAX_SEEN
    # the next read starts before STAMP (the org's clock was within the overlap of it): every one of those
    # records comes back, the one stamped ten minutes earlier does not
    assert loaded.rereads == MAX_SEEN + 500


def test_a_settled_window_leaves_nothing_to_read_again() -> None:
    cursor = Cursor()
    for n in range(3):
        cursor.note(f"00Q{n:015d}", STAMP, STAMP + dt.timedelta(hours=1))
    cursor.settle(STAMP + dt.timedelta(minutes=15), OVERLAP, complete=True)
    text = cursor.dump(OVERLAP)
    assert text is not None and '"re"' not in text
    assert Cursor.parse(text).rereads == 0
