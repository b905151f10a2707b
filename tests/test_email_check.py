"""email_check composes email-validator's own steps with the domain step cached per domain: on any address it
must accept, refuse (with the same reason) and normalise exactly as `validate_email` does."""

from __future__ import annotations

from typing import Any

import pytest
from email_validator import EmailNotValidError, syntax, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connector.mappers import email_check, fields
from connector.mappers.fields import checked_email

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
ODD = '.. @"\\()<>[]:;,\t\x00\u200b\u00a0'
UNICODE = "éüßøñçÅΩжд中文ｆｉ\u0301\u0065\u00e9\ufb01"  # incl. a combining accent NFC changes, and a ligature
LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def _label(alphabet: str, max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=0, max_size=max_size)


local_parts = st.one_of(
    _label(ATEXT + ".", 20),
    _label(ATEXT + ODD, 12),
    _label(ATEXT[:20] + UNICODE + ".", 12),
    _label("ab.", 70),  # over the 64-character local part limit
    st.sampled_from(["postmaster", "Abuse", "a..b", ".a", "a.", "", "x" * 64, "x" * 65]),
    _label(ATEXT[:30] + ' @.\\"' + UNICODE, 10).map(lambda t: f'"{t}"'),  # quoted local parts
)
labels = st.one_of(
    _label(LABEL_CHARS, 12),
    _label("abc" + UNICODE, 8),
    st.sampled_from(["xn--bcher-kva", "xn--zz", "a" * 63, "a" * 64, "-a", "a-", "com", "test", "local"]),
)
domains = st.one_of(
    st.lists(labels, min_size=1, max_size=4).map(".".join),
    st.lists(labels, min_size=1, max_size=3).map(lambda parts: ".".join(parts) + "."),
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.com",
            "localhost",
            "bench.example",
            "a.test",
            "münchen.de",
            "xn--mnchen-3ya.de",
            "[127.0.0.1]",
            "[IPv6:::1]",
            "[300.1.1.1]",
            "[]",
            "",
            ("a" * 60 + ".") * 5 + "com",
        ]
    ),
)
# mostly valid: the equivalence matters most where the composition accepts
plain_locals = st.lists(_label(ATEXT, 10).filter(bool), min_size=1, max_size=3).map(".".join)
plain_domains = st.tuples(
    st.lists(_label("abcxyz019-" + UNICODE, 10).filter(bool), min_size=1, max_size=3),
    st.sampled_from(["com", "de", "example", "org", "xn--p1ai", "рф", "co.uk", "test", "invalid", "c0m"]),
).map(lambda parts: ".".join([*parts[0], parts[1]]))
addresses = st.one_of(
    st.tuples(plain_locals, plain_domains).map(lambda parts: f"{parts[0]}@{parts[1]}"),
    st.tuples(st.one_of(plain_locals, _label(ATEXT[:20] + UNICODE, 10)), plain_domains).map(
        lambda parts: f"{parts[0]}@{parts[1]}"
    ),
    st.tuples(local_parts, domains).map(lambda parts: f"{parts[0]}@{parts[1]}"),
    st.tuples(_label(ATEXT[:26] + " ", 8), local_parts, domains).map(
        lambda parts: f"{parts[0]} <{parts[1]}@{parts[2]}>"  # display names
    ),
    st.text(alphabet=ATEXT[:10] + ODD + UNICODE + "@", max_size=30),
    st.tuples(_label("ab", 200), domains).map(lambda parts: f"{parts[0]}@{parts[1]}"),  # over-long
)


def _library_verdict(address: str) -> tuple[str, Any]:
    try:
        return "ok", validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return "refused", str(exc)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addresses)
@example("person1@bench.example")
@example("Postmaster@example.com")
@example("e\u0301@example.com")
@example('"a b"@example.com')
@example("a@[127.0.0.1]")
@example("a@xn--mnchen-3ya.de")
@example("a@münchen.DE")
@example("ab@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 57)
def test_the_composition_decides_and_normalises_as_validate_email(address: str) -> None:
    verdict, detail = _library_verdict(address)
    assert email_check.problem(address) == (None if verdict == "ok" else detail)
    common = email_check.common_form(address)
    if verdict == "refused":
        assert common is None
    elif common is not None:
        for name in ("normalized", "local_part", "ascii_local_part", "domain", "ascii_domain", "ascii_email"):
            assert getattr(common, name) == getattr(detail, name), name
        assert common.smtputf8 == detail.smtputf8
        assert common.original == detail.original


def test_the_common_path_takes_the_plain_addresses() -> None:
    # the composition is only worth its keep when it decides the ordinary addresses itself
    for address in ("person1@bench.example", "Anne.de-Vries+news@Example.COM", "jürgen@münchen.de"):
        assert email_check.common_form(address) is not None, address


def test_the_domain_is_checked_once_per_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    library_check = syntax.validate_email_domain_name

    def counting(domain: str, **kwargs: Any) -> Any:
        checked.append(domain)
        return library_check(domain, **kwargs)

    monkeypatch.setattr(syntax, "validate_email_domain_name", counting)
    email_check._domain.cache_clear()
    fields._email_problem.cache_clear()
    try:
        emails = [checked_email(f"Person{n}@Bench.example") for n in range(50)]
        with pytest.raises(ValueError, match="not an e-mail address"):
            checked_email("person@bad_domain")
    finally:
        email_check._domain.cache_clear()
        fields._email_problem.cache_clear()
    assert emails[7] == "person7@bench.example"
    # (validate_email, which gives the refused address its reason, holds its own reference to the check)
    assert checked == ["Bench.example", "bad_domain"]
