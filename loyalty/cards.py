"""Card numbers: 16 digits, random (not sequential, not guessable from a neighbour), Luhn check digit."""

from __future__ import annotations

import secrets

from loyalty.exceptions import InvalidCardNumber

CARD_LENGTH = 16


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(payload)):
        digit = int(char)
        if index % 2 == 0:  # every second digit from the right, counting the missing check digit
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_is_valid(number: str) -> bool:
    return len(number) >= 2 and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


def card_number_generate() -> str:
    # First digit never 0, so the number survives tills and spreadsheets that drop leading zeros.
    payload = str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(CARD_LENGTH - 2))
    return payload + luhn_check_digit(payload)


def card_number_normalize(raw: str) -> str:
    """Digits only (spaces and dashes as printed on the card are ignored); raises on a bad number."""
    number = "".join(ch for ch in (raw or "") if ch not in " -")
    if not number.isascii() or not number.isdigit() or len(number) != CARD_LENGTH:
        raise InvalidCardNumber(f"A card number has {CARD_LENGTH} digits.")
    if not luhn_is_valid(number):
        raise InvalidCardNumber("That card number is mistyped (its check digit is wrong).")
    return number


def card_qr_svg(number: str) -> str:
    """The card number as a QR code, an ``<svg>`` element to place inline in a page.

    Only a well-formed card number is encoded (anything else raises ``InvalidCardNumber``), so the
    markup holds nothing but digits and segno's own path data.
    """
    import segno  # imported here: only the till's card pages draw codes

    number = card_number_normalize(number)
    # Error level M survives a scratched or glare-hit phone screen; the quiet zone keeps scanners happy.
    code = segno.make(number, error="m", micro=False)
    return code.svg_inline(
        scale=6, border=4, dark="#000", light="#fff", title=f"Card {number}", svgclass="card-qr", omitsize=True
    )
