"""Template filters for the till's loyalty pages."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from loyalty.cards import CARD_LENGTH, card_number_normalize, card_qr_svg
from loyalty.exceptions import InvalidCardNumber

register = template.Library()


@register.filter
def card_qr(number) -> SafeString | str:
    """An inline QR code of a card number; nothing at all for a value that is not a card number."""
    try:
        return mark_safe(card_qr_svg(str(number)))  # digits only, drawn by segno
    except InvalidCardNumber:
        return ""


@register.filter
def card_grouped(number) -> str:
    """``1234 5678 9012 3452``: a 16-digit number read aloud and typed back in groups of four."""
    text = str(number)
    if len(text) != CARD_LENGTH:
        return text
    try:
        card_number_normalize(text)
    except InvalidCardNumber:
        return text
    return " ".join(text[i : i + 4] for i in range(0, CARD_LENGTH, 4))
