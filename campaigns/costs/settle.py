"""The provider's final price of texts first priced from the table: Twilio usually answers a send with
a null price and sets it once the carrier has billed the text, so the message is fetched again later.

Each row not priced by the provider carries ``settle_after``; a run asks Twilio about the rows due, in
order, and either records the price (the row leaves the small partial index) or asks again later, each
wait twice the text's age, until ``SETTLE_GIVE_UP_AFTER``. No transaction is open during a request.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from campaigns.costs.pricing import SETTLE_FIRST_DELAY, provider_price
from campaigns.models import Delivery, SmsCost

SETTLE_GIVE_UP_AFTER = timedelta(days=3)
SETTLE_BATCH = 200
_TWILIO_SID_PREFIXES = ("SM", "MM")


def _next_ask(sent_at: datetime, now: datetime) -> datetime | None:
    later = now + max(now - sent_at, SETTLE_FIRST_DELAY)
    return None if later - sent_at > SETTLE_GIVE_UP_AFTER else later


def sms_costs_settle(*, now: datetime | None = None, limit: int = SETTLE_BATCH, client=None) -> int:
    """Fetch from Twilio the final price of up to ``limit`` texts due for it; returns how many got one.

    Two queries to find the rows, then one request and one compare-and-set UPDATE per row (a row already
    settled by a concurrent run is left alone, and both runs would write the same price). Stops at the
    first transient error (throttling, 5xx, network), leaving the rest due for the next run; a message
    Twilio does not know (404) or a send without a Twilio id is given up. Does nothing when SMS is not
    configured.
    """
    from twilio.base.exceptions import TwilioException, TwilioRestException

    from campaigns.channels.sms import twilio_client
    from campaigns.exceptions import ChannelNotConfiguredError

    now = now or timezone.now()
    due = list(
        SmsCost.objects.filter(settle_after__lte=now)
        .order_by("settle_after")
        .values_list("delivery_id", "sent_at")[:limit]
    )
    if not due:
        return 0
    try:
        client = client or twilio_client()
    except ChannelNotConfiguredError:
        return 0
    sids = dict(Delivery.objects.filter(pk__in=[pk for pk, _ in due]).values_list("pk", "provider_message_id"))
    settled = 0
    for delivery_id, sent_at in due:
        pending = SmsCost.objects.filter(delivery_id=delivery_id, settle_after__isnull=False)
        sid = sids.get(delivery_id) or ""
        if not sid.startswith(_TWILIO_SID_PREFIXES):
            pending.update(settle_after=None)
            continue
        try:
            message = client.messages(sid).fetch()
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                break
            pending.update(settle_after=None)  # 404 and other refusals: asking again will not help
            continue
        except (TwilioException, OSError):
            break
        price = provider_price({"price": message.price, "price_unit": message.price_unit})
        if price is None:
            pending.update(settle_after=_next_ask(sent_at, now))
            continue
        amount, currency = price
        settled += pending.update(
            amount_micros=amount, currency=currency, source=SmsCost.Source.PROVIDER, settle_after=None
        )
    return settled
