"""Twilio's final price, fetched later for texts first priced from the table; only HTTP is stubbed."""

from datetime import timedelta

import pytest

from campaigns.costs.pricing import SETTLE_FIRST_DELAY
from campaigns.costs.settle import SETTLE_GIVE_UP_AFTER, sms_costs_settle
from campaigns.models import SmsCost
from tests.campaigns.results.world import deliver, march, sent_campaign
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
ACCOUNT = "AC" + "0" * 32
MESSAGE_URL = rf"^https://api\.twilio\.com/2010-04-01/Accounts/{ACCOUNT}/Messages/(?P<sid>\w+)\.json$"
NOW = march(5, 12)


@pytest.fixture
def twilio(settings, http_stub):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.TWILIO_AUTH_TOKEN = "test-token"
    prices = {}

    def fetched(seen):
        sid = seen.url.rsplit("/", 1)[1].removesuffix(".json")
        if sid not in prices:
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        price = prices[sid]
        if isinstance(price, int):
            return price, {"code": 20500, "message": "Internal Server Error", "status": price}
        return 200, {"sid": sid, "status": "delivered", "price": price, "price_unit": "USD", "num_segments": "1"}

    http_stub.add("GET", MESSAGE_URL, answer=fetched)
    http_stub.prices = prices
    return http_stub


def text(sid, *, sent_at, source="price_table", micros=7900):
    campaign = sent_campaign(f"Campaign {sid}", started=sent_at)
    delivery = deliver(campaign, CustomerFactory(), channel="sms", provider_message_id=sid)
    return SmsCost.objects.create(
        delivery_id=delivery.pk,
        cause_type="campaign",
        cause_id=campaign.pk,
        sent_at=sent_at,
        segments=1,
        amount_micros=micros,
        currency="USD" if micros is not None else "",
        source=source,
        settle_after=sent_at + SETTLE_FIRST_DELAY,
    )


def test_the_final_price_replaces_the_estimate_and_the_row_is_done(twilio):
    billed = text("SM" + "1" * 32, sent_at=NOW - timedelta(hours=1))
    twilio.prices["SM" + "1" * 32] = "-0.00830"

    assert sms_costs_settle(now=NOW) == 1

    billed.refresh_from_db()
    assert (billed.amount_micros, billed.currency, billed.source, billed.settle_after) == (
        8300,
        "USD",
        "provider",
        None,
    )
    assert sms_costs_settle(now=NOW) == 0  # nothing due any more
    assert len(twilio.seen) == 1


def test_a_price_still_null_is_asked_again_later_then_given_up(twilio):
    sent_at = NOW - timedelta(hours=2)
    waiting = text("SM" + "2" * 32, sent_at=sent_at)
    twilio.prices["SM" + "2" * 32] = None

    assert sms_costs_settle(now=NOW) == 0

    waiting.refresh_from_db()
    assert waiting.settle_after == NOW + timedelta(hours=2)  # waits as long again as the text's age
    assert waiting.source == "price_table"
    late = sent_at + SETTLE_GIVE_UP_AFTER - timedelta(hours=1)
    sms_costs_settle(now=late)
    waiting.refresh_from_db()
    assert waiting.settle_after is None
    assert waiting.amount_micros == 7900  # the table's estimate stays


def test_a_message_twilio_does_not_know_is_given_up_and_an_outage_stops_the_run(twilio):
    unknown = text("SM" + "3" * 32, sent_at=NOW - timedelta(hours=3))
    failing = text("SM" + "4" * 32, sent_at=NOW - timedelta(hours=2))
    untouched = text("SM" + "5" * 32, sent_at=NOW - timedelta(hours=1))
    twilio.prices.update({"SM" + "4" * 32: 503, "SM" + "5" * 32: "-0.0079"})

    sms_costs_settle(now=NOW)

    for cost in (unknown, failing, untouched):
        cost.refresh_from_db()
    assert unknown.settle_after is None
    assert failing.settle_after == failing.sent_at + SETTLE_FIRST_DELAY  # due again next run
    assert untouched.source == "price_table"  # the run stopped before it
    assert len(twilio.seen) == 2


def test_without_twilio_credentials_nothing_is_asked(twilio, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    text("SM" + "6" * 32, sent_at=NOW - timedelta(hours=1))

    assert sms_costs_settle(now=NOW) == 0
    assert twilio.seen == []


def test_a_send_without_a_twilio_id_is_not_asked_about(twilio):
    demo = text("outbox:12", sent_at=NOW - timedelta(hours=1))

    sms_costs_settle(now=NOW)

    demo.refresh_from_db()
    assert demo.settle_after is None
    assert twilio.seen == []
