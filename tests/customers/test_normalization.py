import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.exceptions import InvalidContact
from customers.normalization import (
    normalize_email,
    normalize_phone,
    suggest_email_correction,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ana.Lopez@Example.COM ", "Ana.Lopez@example.com"),
        ("user+tag@sub.example.co.uk", "user+tag@sub.example.co.uk"),
        ("info@bücher.de", "info@xn--bcher-kva.de"),
        ("info@XN--BCHER-KVA.de", "info@xn--bcher-kva.de"),
        ("x@example.com.", "x@example.com"),
    ],
)
def test_normalize_email_accepts_and_canonicalises(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plainaddress",
        "two@@example.com",
        "a@b@example.com",
        "user@localhost",
        "user@[127.0.0.1]",
        "user@127.0.0.1",
        "user@exa mple.com",
        "us\u200ber@example.com",
        "user@example.com\u202e",
        "user\x00@example.com",
        ".user@example.com",
        "us..er@example.com",
        "josé@example.com",
        "user@-example.com",
        "user@example.c0m",
        "a" * 65 + "@example.com",
        "a@" + ".".join(["b" * 60] * 5) + ".com",
        "x" * 321,
    ],
)
def test_normalize_email_refuses_with_a_message(raw):
    with pytest.raises(InvalidContact) as excinfo:
        normalize_email(raw)
    assert str(excinfo.value)


@given(st.emails())
def test_normalize_email_is_idempotent(raw):
    try:
        once = normalize_email(raw)
    except InvalidContact:
        return
    assert normalize_email(once) == once
    assert len(once) <= 320
    _local, domain = once.rsplit("@", 1)
    assert domain == domain.lower()


@given(st.text(max_size=400))
def test_normalize_email_never_crashes_and_never_returns_invisible_characters(raw):
    try:
        email = normalize_email(raw)
    except InvalidContact:
        return
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp", "Zs"} for ch in email)
    assert not any(ch.isspace() for ch in email)


_INVISIBLE = ["\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\u00a0", "\u2028", "\t", "\x00", "\x7f"]


@given(email=st.emails(), char=st.sampled_from(_INVISIBLE), data=st.data())
def test_an_invisible_character_anywhere_in_an_email_is_refused_or_removed(email, char, data):
    at = data.draw(st.integers(min_value=0, max_value=len(email)))
    try:
        result = normalize_email(email[:at] + char + email[at:])
    except InvalidContact:
        return
    assert char not in result
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp", "Zs"} for ch in result)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(415) 555-2671", "+14155552671"),
        ("+1 415 555 2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+33 6 12 34 56 78", "+33612345678"),
    ],
)
def test_normalize_phone_gives_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["", "abc", "123", "+1 000 000 0000", "+999 123", "1" * 41, "+1415\x005552671"])
def test_normalize_phone_refuses_with_a_message(raw):
    with pytest.raises(InvalidContact):
        normalize_phone(raw)


@given(st.text(alphabet="0123456789 +-().", max_size=30))
def test_normalize_phone_is_idempotent(raw):
    try:
        once = normalize_phone(raw)
    except InvalidContact:
        return
    assert once.startswith("+")
    assert normalize_phone(once) == once


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("ana@gmial.com", "ana@gmail.com"), ("bo@hotmial.com", "bo@hotmail.com"), ("c@gmail.com", None)],
)
def test_typo_suggestions(typed, suggested):
    assert suggest_email_correction(typed) == suggested
