import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.exceptions import InvalidContact, InvalidNumber, InvalidText
from customers.normalization import (
    normalize_email,
    normalize_name,
    normalize_phone,
    parse_amount,
    phone_sms_refusal,
    suggest_email_correction,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ana.Lopez@Example.COM ", "Ana.Lopez@example.com"),
        ("user+tag@sub.example.co.uk", "user+tag@sub.example.co.uk"),
        ("info@bücher.de", "info@xn--bcher-kva.de"),
        ("info@XN--BCHER-KVA.de", "info@xn--bcher-kva.de"),
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


# --- bad input that used to get through ----------------------------------------------------------


@pytest.mark.parametrize("raw", ["ann@example.com.", "ann@example.com..", "Ann@Example.COM. "])
def test_an_email_ending_in_a_dot_is_refused_not_stripped(raw):
    with pytest.raises(InvalidContact, match="ends with a dot"):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("020 7946 0018", "GB", "+442079460018"),
        ("07911 123456", "gb", "+447911123456"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("(415) 555-2671", None, "+14155552671"),
        ("(415) 555-2671", "", "+14155552671"),
        ("(415) 555-2671", "ZZ", "+14155552671"),  # not a known country: the default region
        ("+1 415 555 2671", "GB", "+14155552671"),  # a typed country code wins over the region
    ],
)
def test_a_local_number_is_read_in_the_given_region(raw, region, expected):
    assert normalize_phone(raw, region=region) == expected


def test_a_local_number_of_another_country_is_not_read_in_the_default_region():
    with pytest.raises(InvalidContact):
        normalize_phone("020 7946 0018")  # a London number typed without +44, read as a US number


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1-800-FLOWERS", "letters"),
        ("+1 800 FLOWERS", "letters"),
        ("(415) 555-2671 ext 12", "extension"),
        ("+1 415 555 2671 x12", "extension"),
        ("415 555 2671;ext=5", "extension"),
        ("+1 900 555 0123", "premium-rate"),
        ("+44 871 234 5678", "premium-rate"),
    ],
)
def test_letters_extensions_and_premium_rate_numbers_are_refused(raw, message):
    with pytest.raises(InvalidContact, match=message):
        normalize_phone(raw)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("+1 415 555 2671", None),  # US: one range for landlines and mobiles; the person's word counts
        ("+44 7911 123456", None),
        ("+33 6 12 34 56 78", None),
        ("+44 20 7946 0018", "a landline"),
        ("+1 800 356 9377", "a toll-free number"),
        ("+44 56 1234 5678", "VoIP"),
        ("+44 7640 123456", "a pager"),
        ("+44 300 123 4567", "switchboard"),
    ],
)
def test_any_valid_kind_is_a_contact_but_only_numbers_that_receive_texts_get_sms(raw, kind):
    e164 = normalize_phone(raw)
    refusal = phone_sms_refusal(e164)
    if kind is None:
        assert refusal is None
    else:
        assert kind in refusal
        assert refusal.startswith("SMS consent needs a mobile number")


@pytest.mark.parametrize(
    "raw",
    [
        "Ann\nLee",
        "Ann\r\nBcc: x@example.com",
        "Ann\tLee",
        "Ann\x7f",
        "Ann\x00",
        "\u202eAnn",
        "Ann\u202aLee",
        "Ann\u2066Lee\u2069",
        "Ann\u200bLee",
        "\ufeffAnn",
        "Ann\u00adLee",
        "Ann\u2028Lee",
        "Ann\u200d",
        "\ue000Ann",
    ],
)
def test_names_with_line_breaks_or_invisible_characters_are_refused(raw):
    with pytest.raises(InvalidText, match="line break or an invisible character"):
        normalize_name(raw, label="first name")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann ", "Ann"),
        ("Jose\u0301", "Jos\u00e9"),  # composed, so one name is one spelling
        ("\u0645\u0647\u0631\u200c\u0646\u0627\u0632", "\u0645\u0647\u0631\u200c\u0646\u0627\u0632"),  # Persian ZWNJ
        ("O'Brien-Smith", "O'Brien-Smith"),
        ("", ""),
        (None, ""),
    ],
)
def test_names_are_trimmed_and_composed_and_joiners_inside_a_word_are_kept(raw, expected):
    assert normalize_name(raw) == expected


def test_a_name_longer_than_allowed_is_refused():
    with pytest.raises(InvalidText, match="longer than 100"):
        normalize_name("x" * 101)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.50", Decimal("12.50")),
        (" 7 ", Decimal("7")),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("1000", Decimal("1000")),
        ("-3", Decimal("-3")),
        (Decimal("3.10"), Decimal("3.10")),
        (5, Decimal("5")),
    ],
)
def test_plain_amounts_are_read(raw, expected):
    assert parse_amount(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1e3", "no exponent"),
        ("1E3", "no exponent"),
        ("NaN", "plain digits"),
        ("-Infinity", "plain digits"),
        ("inf", "plain digits"),
        ("1,000", "thousands separators"),
        ("1 000", "plain digits"),
        ("0x10", "plain digits"),
        ("\u0661\u0662", "plain digits"),  # Arabic-Indic digits, which Decimal() would read
        ("12.345", "more than two decimals"),
        ("", "Enter the amount"),
        (Decimal("NaN"), "must be a number"),
        (Decimal("Infinity"), "must be a number"),
        (Decimal("1.005"), "more than two decimals"),
        (1.5, "not a float"),
        (True, "not a bool"),
    ],
)
def test_other_amount_notations_are_refused_with_a_message(raw, message):
    with pytest.raises(InvalidNumber, match=message):
        parse_amount(raw)
