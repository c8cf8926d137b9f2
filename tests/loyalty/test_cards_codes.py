import itertools

import pytest

from loyalty.cards import card_number_generate, card_number_normalize, luhn_check_digit, luhn_is_valid
from loyalty.codes import ALPHABET, coupon_code_generate, coupon_code_normalize
from loyalty.exceptions import CouponError, InvalidCardNumber


def test_luhn_matches_a_known_number():
    # The classic test number from ISO/IEC 7812 examples.
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_is_valid("79927398713")
    assert not luhn_is_valid("79927398710")


def test_generated_cards_are_valid_random_and_not_sequential():
    cards = [card_number_generate() for _ in range(500)]
    assert all(len(c) == 16 and luhn_is_valid(c) and c[0] != "0" for c in cards)
    assert len(set(cards)) == 500
    numbers = sorted(int(c[:-1]) for c in cards)
    assert all(b - a > 1 for a, b in itertools.pairwise(numbers))


def test_a_single_mistyped_digit_is_caught():
    card = card_number_generate()
    for position in range(16):
        wrong = card[:position] + str((int(card[position]) + 1) % 10) + card[position + 1 :]
        with pytest.raises(InvalidCardNumber):
            card_number_normalize(wrong)
    assert card_number_normalize(f"{card[:4]} {card[4:8]}-{card[8:12]} {card[12:]}") == card


@pytest.mark.parametrize("raw", ["", "123", "a" * 16, "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦"])
def test_malformed_card_numbers_are_refused(raw):
    with pytest.raises(InvalidCardNumber):
        card_number_normalize(raw)


def test_codes_avoid_ambiguous_characters():
    codes = {coupon_code_generate() for _ in range(2000)}
    assert len(codes) == 2000
    assert not set("".join(codes)) & set("01OIL")
    assert set("".join(codes)) <= set(ALPHABET)


def test_code_normalisation():
    assert coupon_code_normalize(" ab-cd 23 ") == "ABCD23"
    for raw in ["", "   ", "<script>", "x" * 40, "ÄBC"]:
        with pytest.raises(CouponError):
            coupon_code_normalize(raw)
