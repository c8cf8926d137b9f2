"""The cost of one text: the provider's price when its answer carries one, otherwise the price table's
price for the destination country times the segments the text took.

Twilio answers a send with ``price``/``price_unit`` (for the whole message, negative: a debit) and
``num_segments``; the price is usually still null at that moment and status callbacks never carry it.
The segments then come from Twilio's ``num_segments`` or, failing that, from counting the text
(``campaigns.sms.sms_count``: GSM-7 160/153, UCS-2 70/67).
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from campaigns.models import SmsCost, SmsPrice
from campaigns.models.costs import MICROS
from campaigns.sms import sms_count

_CURRENCY = re.compile(r"^[A-Z]{3}$")
#: how long after a send the provider is first asked for its final price (the carrier bills later)
SETTLE_FIRST_DELAY = timedelta(minutes=15)


class PriceBook:
    """The price table, read on first use (one query for a chunk that sends texts, none otherwise):
    country → (price per segment, currency); ``""`` prices every country without a row of its own."""

    def __init__(self, prices: dict[str, tuple[Decimal, str]] | None = None):
        self._prices = prices

    def price_for(self, country: str) -> tuple[Decimal, str] | None:
        if self._prices is None:
            self._prices = {
                row.country: (row.price_per_segment, row.currency) for row in SmsPrice.objects.all().order_by()
            }
        return self._prices.get(country) or self._prices.get("")


# Parsing costs ~70 µs a number; a chunk's texts and the settle job ask again for the same numbers.
@functools.lru_cache(maxsize=65_536)
def destination_country(number: str) -> str:
    """The ISO country of an E.164 number (``+447700900123`` → ``GB``), ``""`` when it cannot be told."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ""
    # A number outside the known ranges (a test range, a new block) still has its calling code's
    # main country, which is what the carrier bills.
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code
    )
    return region if region and region != "ZZ" else ""


def provider_price(detail: dict) -> tuple[int, str] | None:
    """Twilio's price of the whole message in micros with its currency, when it gave both."""
    price, unit = detail.get("price"), str(detail.get("price_unit") or "").upper()
    if price in (None, "") or not _CURRENCY.match(unit):
        return None
    try:
        amount = abs(Decimal(str(price)))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return int((amount * MICROS).to_integral_value()), unit


def _segments(detail: dict, body: str) -> int:
    try:
        reported = int(str(detail.get("num_segments") or ""))
    except ValueError:
        reported = 0
    return reported if reported > 0 else sms_count(body).segments


def sms_cost_make(
    *,
    delivery_id: int,
    cause_type: str,
    cause_id: int,
    to: str,
    body: str,
    detail: dict,
    prices: PriceBook,
    sent_at: datetime | None = None,
) -> SmsCost:
    """The (unsaved) cost of one text the provider accepted; no I/O.

    ``detail`` is the provider's answer (``price``, ``price_unit``, ``num_segments``). A text whose price
    neither the provider nor the table knows gets a row all the same (amount null), so results can say
    how many texts are priced.
    """
    segments = _segments(detail, body)
    country = destination_country(to)
    provider = provider_price(detail)
    amount, currency, source = None, "", SmsCost.Source.UNKNOWN
    if provider is not None:
        (amount, currency), source = provider, SmsCost.Source.PROVIDER
    elif (price := prices.price_for(country)) is not None:
        per_segment, currency = price
        amount, source = int((per_segment * segments * MICROS).to_integral_value()), SmsCost.Source.PRICE_TABLE
    return SmsCost(
        delivery_id=delivery_id,
        cause_type=cause_type,
        cause_id=cause_id,
        sent_at=sent_at,
        segments=min(segments, 32767),
        country=country,
        amount_micros=amount,
        currency=currency,
        source=source,
    )


def sms_costs_stamp(costs: list[SmsCost], *, sent_at: datetime) -> None:
    """Date the costs with their send time; those not priced by the provider are due to ask it again
    after ``SETTLE_FIRST_DELAY`` (``campaigns.costs.settle``)."""
    for cost in costs:
        cost.sent_at = sent_at
        cost.settle_after = None if cost.source == SmsCost.Source.PROVIDER else sent_at + SETTLE_FIRST_DELAY
