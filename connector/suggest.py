""" "Did you mean" hints for names an admin typed: keys, schema fields, stages, targets, sources.

A typo in a config is the most common config error; naming the closest known names turns a hunt through the
README into a one-character fix. difflib's ratio is enough for names this short.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(name: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """The known names closest to `name`, best first; case is ignored (`Lead_Status` finds `lead_status`)."""
    by_folded: dict[str, str] = {}
    for candidate in known:
        by_folded.setdefault(candidate.casefold(), candidate)
    found = difflib.get_close_matches(name.casefold(), list(by_folded), n=limit, cutoff=0.6)
    return [by_folded[f] for f in found]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`" (did you mean 'x'?)"`, `" (did you mean 'x' or 'y'?)"`, or "" when nothing is close."""
    matches = close_matches(name, known)
    if not matches:
        return ""
    quoted = [f"'{m}'" for m in matches]
    shown = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" (did you mean {shown}?)"
