"""One vtiger record's changes of a run, gathered so that a single `revise` carries them all.

A record may get a new stage label and lose or gain several segment values in one run. The Segments field is
one multi-select, so every segment's change on a record is a change of the same field: sent one by one, the
label and each segment cost a revise each (and vtiger serves one request at a time per session). Gathered
here they cost one revise per record, while each part keeps its own outcome: the run loop records labels per
record and memberships per segment and person, so it must learn exactly which parts landed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import RecordError
from ...plan import LabelChange, Member
from ...schema import RecordRef

# how vtiger joins a multi-select's values; a JSON list is accepted but only its first value is stored
MULTI_SEPARATOR = " |##| "


@dataclass(frozen=True)
class SegmentEdit:
    """One segment's value to add to or remove from a record's Segments field."""

    segment: str
    value: str
    add: bool
    # the member this record belongs to; None for a stray (a value on a record no member owns: nothing the
    # state tracks, so its failure is a note, not a rejection)
    owner: Member | None
    # strict: the value is put back on a member's record; the state holds that membership already
    restore: bool = False
    # the campaign to relate the record to once the field is written (a person entering, not a restore)
    campaign: str | None = None


@dataclass
class RecordEdit:
    """Everything one record gets this run: at most one label and any number of segment edits."""

    ref: RecordRef
    label: LabelChange | None = None
    label_field: str | None = None
    segments: list[SegmentEdit] = field(default_factory=list)
    segment_field: str | None = None
    # filled in by the one worker that writes this record
    fields_written: bool = False  # the revise landed (or nothing in the fields needed changing)
    related: set[str] = field(default_factory=set)  # segments whose campaign relation was made
    related_errors: dict[str, RecordError] = field(default_factory=dict)

    def values_after(self, current: list[str]) -> list[str]:
        """The Segments values once every segment edit is applied to `current`, in the order given.

        Only the edited values move; the others (other segments, values set by hand) keep their place."""
        values = list(current)
        for edit in self.segments:
            if edit.add:
                if edit.value not in values:
                    values.append(edit.value)
            else:
                values = [v for v in values if v != edit.value]
        return values

    def element(self, current: list[str] | None) -> tuple[dict[str, str], list[str] | None]:
        """The revise element (only what changes) and the Segments values it leaves, given the record's
        current Segments values (None when no segment edits this record)."""
        element = {"id": self.ref.id}
        if self.label is not None and self.label_field is not None:
            element[self.label_field] = self.label.new
        if current is None or not self.segments or self.segment_field is None:
            return element, None
        values = self.values_after(current)
        if values != current:
            element[self.segment_field] = MULTI_SEPARATOR.join(values)
        return element, values

    def label_error(self, error: RecordError | None) -> RecordError | None:
        """What became of the label, given the record's outcome (`error`: None when all went through)."""
        return None if error is None or self.fields_written else error

    def segment_error(self, edit: SegmentEdit, error: RecordError | None) -> RecordError | None:
        """What became of one segment edit: the record's refusal fails every part of it; after the fields
        landed, only a campaign relation that was not made fails its segment."""
        if edit.segment in self.related_errors:
            return self.related_errors[edit.segment]
        if error is None:
            return None
        if self.fields_written and (edit.campaign is None or edit.segment in self.related):
            return None
        return error
