import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.sms import GSM7_BASIC, GSM7_EXTENSION, sms_count

BASIC = sorted(GSM7_BASIC)
EXTENSION = sorted(GSM7_EXTENSION)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("Hello", "GSM-7", 5, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("a" * 459, "GSM-7", 459, 3),
        ("a" * 460, "GSM-7", 460, 4),
        # Extension characters take two septets.
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 159 + "€", "GSM-7", 161, 2),
        ("[]{}^~|\\", "GSM-7", 16, 1),
        # An escape pair is never split: 152 septets + "€" cannot fit in a 153-septet part.
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("a" * 151 + "€" + "a" * 153, "GSM-7", 306, 2),
        # Accented letters outside GSM-7 switch everything to UCS-2.
        ("Café olé", "GSM-7", 8, 1),  # é is in GSM-7
        ("ç" * 70, "UCS-2", 70, 1),  # lower-case ç is not (only Ç is)
        ("ç" * 71, "UCS-2", 71, 2),
        ("ç" * 134, "UCS-2", 134, 2),
        ("ç" * 135, "UCS-2", 135, 3),
        ("a" * 159 + "✓", "UCS-2", 160, 3),
        # Emoji outside the BMP take two UTF-16 units and are never split across parts.
        ("😀", "UCS-2", 2, 1),
        ("😀" * 35, "UCS-2", 70, 1),
        ("😀" * 36, "UCS-2", 72, 2),
        ("😀" * 66, "UCS-2", 132, 2),
        ("😀" * 67, "UCS-2", 134, 3),
        ("x" * 66 + "😀" + "x" * 66, "UCS-2", 134, 3),  # 134 units fit two parts only if the pair split
    ],
)
def test_known_vectors(text, encoding, units, segments):
    count = sms_count(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_count_names_the_characters_that_force_ucs2():
    assert sms_count("Hi ✓ 😀 ✓").non_gsm == ("✓", "😀")


@given(st.text(alphabet=BASIC, max_size=800))
def test_basic_gsm_text_segments(text):
    count = sms_count(text)
    n = len(text)
    assert count.encoding == "GSM-7"
    assert count.units == n
    assert count.segments == (0 if n == 0 else 1 if n <= 160 else math.ceil(n / 153))


@given(st.text(alphabet=st.characters(codec="utf-16", exclude_categories=("Cs",)), min_size=1, max_size=400))
def test_any_non_gsm_character_makes_ucs2(text):
    count = sms_count(text)
    has_non_gsm = any(c not in GSM7_BASIC and c not in GSM7_EXTENSION for c in text)
    assert (count.encoding == "UCS-2") == has_non_gsm
    if has_non_gsm:
        assert count.units == len(text.encode("utf-16-le")) // 2


@given(st.text(alphabet=BASIC + EXTENSION, max_size=600))
def test_gsm_parts_hold_at_most_153_septets_and_never_split_an_escape(text):
    count = sms_count(text)
    if count.units > 160:
        # Lower bound by capacity, upper bound: each part loses at most one septet to an unsplit escape.
        assert math.ceil(count.units / 153) <= count.segments <= math.ceil(count.units / 152)


@given(st.text(alphabet=BASIC + EXTENSION + ["ç", "😀", "✓"], max_size=300), st.sampled_from(["a", "€", "😀"]))
def test_appending_never_lowers_the_segment_count(text, extra):
    before = sms_count(text)
    after = sms_count(text + extra)
    if before.encoding == after.encoding:
        assert after.segments >= before.segments


BMP_NON_GSM = st.characters(min_codepoint=0x100, max_codepoint=0xD7FF).filter(
    lambda char: char not in GSM7_BASIC and char not in GSM7_EXTENSION
)


@given(st.lists(BMP_NON_GSM, min_size=1, max_size=400).map("".join))
def test_ucs2_text_of_single_unit_characters_takes_70_then_67_per_part(text):
    count = sms_count(text)
    n = len(text)
    assert (count.encoding, count.units) == ("UCS-2", n)
    assert count.segments == (1 if n <= 70 else math.ceil(n / 67))


@given(st.integers(min_value=0, max_value=480), st.integers(min_value=0, max_value=480), BMP_NON_GSM)
def test_one_non_gsm_character_anywhere_moves_the_text_to_the_ucs2_boundaries(before, after, char):
    text = "a" * before + char + "a" * after
    n = before + 1 + after
    count = sms_count(text)
    assert count.encoding == "UCS-2"
    assert count.segments == (1 if n <= 70 else math.ceil(n / 67))
    gsm = sms_count("a" * n)
    assert gsm.segments == (1 if n <= 160 else math.ceil(n / 153))
