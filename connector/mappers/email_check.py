"""Whether a text is an e-mail address, decided by email-validator, with its domain check paid once per domain.

`validate_email` spends most of its time on the part after the @-sign (IDNA and UTS-46 checks), which
depends on the domain alone. A first run sees every address for the first time, but a million addresses
share a few thousand domains. So the common path runs the library's own steps in `validate_email`'s order
(split, local part, domain, lengths) with the domain step cached per domain. Anything else (a display name,
a quoted local part, a local part that Unicode normalisation changes, an IP literal, an empty domain) and
every refusal go through `validate_email` itself, so a reason is always the library's own words. There is no
hand-written check here: tests/test_email_check.py holds the composition to `validate_email` on generated
addresses.
"""

from __future__ import annotations

import functools
import unicodedata
from types import ModuleType
from typing import Any

DOMAINS_REMEMBERED = 1 << 16  # domains are few next to addresses; a bound keeps a hostile file's cost flat


@functools.cache
def _library() -> tuple[ModuleType, ModuleType, ModuleType]:
    """email-validator, imported on first use: its import compiles its grammar (about 20 ms of CPU), which a
    run that maps no address (`validate`, a config without e-mail fields) does without."""
    import email_validator
    from email_validator import rfc_constants, syntax

    return email_validator, syntax, rfc_constants


def problem(candidate: str) -> str | None:
    """Why `candidate` is not an e-mail address (email-validator's reason), or None when it is one."""
    if common_form(candidate) is not None:
        return None
    library, _, _ = _library()
    try:
        library.validate_email(candidate, check_deliverability=False)
    except library.EmailNotValidError as exc:
        return str(exc)
    return None


def common_form(candidate: str) -> Any:
    """The library's `ValidatedEmail` for an address on the common path, or None: not valid, or a form this
    does not compose (then `validate_email` decides)."""
    library, syntax, constants = _library()
    try:
        display_name, original_local, local, quoted, domain_part = syntax.split_email(candidate)
    except library.EmailNotValidError:
        return None
    if display_name is not None or quoted or not domain_part or domain_part.startswith("["):
        return None
    if unicodedata.normalize("NFC", local) != local:
        return None  # validate_email checks the local part a second time, after normalisation
    try:
        local_info = syntax.validate_email_local_part(
            local,
            allow_smtputf8=library.ALLOW_SMTPUTF8,
            allow_empty_local=library.ALLOW_EMPTY_LOCAL,
            quoted_local_part=False,
            strict=library.STRICT,
        )
    except library.EmailNotValidError:
        return None
    domain_info = _domain(domain_part, library.TEST_ENVIRONMENT, library.GLOBALLY_DELIVERABLE)
    if domain_info is None:
        return None
    found = library.ValidatedEmail()
    found.original = original_local + "@" + domain_part
    found.display_name = None
    found.smtputf8 = local_info["smtputf8"]
    found.local_part = local_info["local_part"]
    found.ascii_local_part = local_info["ascii_local_part"]
    if (
        found.ascii_local_part is not None
        and found.ascii_local_part.lower() in constants.CASE_INSENSITIVE_MAILBOX_NAMES
        and found.local_part is not None
    ):
        found.ascii_local_part = found.ascii_local_part.lower()
        found.local_part = found.local_part.lower()
    found.domain = domain_info["domain"]
    found.ascii_domain = domain_info["ascii_domain"]
    found.normalized = found.local_part + "@" + found.domain
    found.ascii_email = (
        found.ascii_local_part + "@" + found.ascii_domain
        if found.ascii_local_part and found.ascii_domain
        else None
    )
    try:
        syntax.validate_email_length(found)
    except library.EmailNotValidError:
        return None
    return found


@functools.lru_cache(maxsize=DOMAINS_REMEMBERED)
def _domain(domain_part: str, test_environment: bool, globally_deliverable: bool) -> Any:
    """The library's check of the part after the @-sign (its result, or None when it refuses it)."""
    library, syntax, _ = _library()
    try:
        return syntax.validate_email_domain_name(
            domain_part, test_environment=test_environment, globally_deliverable=globally_deliverable
        )
    except library.EmailNotValidError:
        return None
