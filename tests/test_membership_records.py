"""The state's record of which target rows connector created for a membership (Salesforce CampaignMember Ids)."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

from connector.state import StateStore

DAY = dt.date(2026, 11, 23)
V1_STATE = Path(__file__).parent / "data" / "state-v1.sqlite"


def test_records_follow_a_merge_and_leave_with_the_membership(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    store.add_members("sf_out", "win-back", ["old", "new"], DAY, 1)
    store.set_membership_records("sf_out", "win-back", {"old": ["00vA"], "new": ["00vB"]})
    store.set_membership_records("sf_out", "other", {"old": ["00vC"]})

    store.rename_person("old", "new")  # a merge: both rows are still connector's to remove
    assert store.membership_records("sf_out", "win-back") == {"new": ("00vA", "00vB")}
    assert store.membership_records("sf_out", "other") == {"new": ("00vC",)}

    # made again (a strict campaign re-adding a member deleted by hand): the new row replaces the gone ones
    store.set_membership_records("sf_out", "win-back", {"new": ["00vD"]})
    assert store.membership_records("sf_out", "win-back") == {"new": ("00vD",)}

    store.remove_members("sf_out", "win-back", ["new"])
    assert store.membership_records("sf_out", "win-back") == {}
    assert store.membership_records("sf_out", "other") == {"new": ("00vC",)}
    store.close()


def test_a_state_file_from_before_gains_the_table_and_vouches_for_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    shutil.copy(V1_STATE, path)  # written by the version-1 code: memberships, no record of who made them
    old = sqlite3.connect(path)
    members = old.execute("SELECT target, segment, person_key FROM memberships").fetchall()
    old.close()
    assert members
    store = StateStore(path)
    try:
        for target, segment, key in members:
            assert key in store.members(target)[segment]
            assert store.membership_records(target, segment) == {}  # the member rows may be hand work
    finally:
        store.close()
