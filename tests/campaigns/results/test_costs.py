"""SMS cost and cost per conversion against a history counted by hand."""

from datetime import timedelta
from decimal import Decimal

import pytest

from campaigns.models import SmsCost
from campaigns.results import selectors
from campaigns.results.costs import COST_UNKNOWN, Spend, campaign_channel_costs, sms_cost_per_conversion
from campaigns.results.funnel import campaign_results
from tests.campaigns.results.world import PERIOD, buy, deliver, march, sent_campaign
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
WEEK = timedelta(days=7)


def priced(delivery, micros, currency="USD", source="provider"):
    SmsCost.objects.create(
        delivery_id=delivery.pk,
        cause_type=delivery.cause_type,
        cause_id=delivery.cause_id,
        sent_at=delivery.sent_at,
        segments=1,
        amount_micros=micros,
        currency=currency if micros is not None else "",
        source=source if micros is not None else "unknown",
    )


def history():
    """Texts: 3 texts at 0.05 + 0.10 + 0.05 USD, 2 purchases after them (and one after an email).
    Mixed: one text at 0.04 USD, one without a price; 1 purchase. Old: a text sent before the period
    (not the period's spend) followed by a purchase in it."""
    texts = sent_campaign("Texts", started=march(2, 9))
    mixed = sent_campaign("Mixed", started=march(4, 9))
    old = sent_campaign("Old", started=march(1, 9) - timedelta(days=4))
    a, b, c, d, e, f, g = (CustomerFactory() for _ in range(7))
    deliver(texts, a, channel="email", sent_at=march(2, 8))
    priced(deliver(texts, a, channel="sms"), 50_000)  # the later touch: the text gets the purchase
    priced(deliver(texts, b, channel="sms"), 100_000, source="price_table")
    priced(deliver(texts, c, channel="sms"), 50_000)
    deliver(texts, f, channel="email")
    priced(deliver(mixed, d, channel="sms"), 40_000)
    deliver(mixed, e, channel="sms")  # sent through the outbox: no cost row
    priced(deliver(old, g, channel="sms"), 99_000_000)
    buy(a, march(3), "20.00")
    buy(b, march(4), "30.00")
    buy(f, march(3), "15.00")
    buy(d, march(5), "10.00")
    buy(g, march(1, 12), "12.00")
    return texts


def test_sms_cost_per_conversion_per_campaign_on_the_dashboard():
    history()
    ids = selectors.campaign_ids_touching(PERIOD.previous.start - WEEK, PERIOD.end)
    attributed = selectors.last_touch_purchases(start=PERIOD.start, end=PERIOD.end, window=WEEK, campaign_ids=ids)

    table = sms_cost_per_conversion(PERIOD, ids, attributed=attributed)

    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["Texts"] == [3, "3 of 3", Decimal("0.20"), "USD", 2, Decimal("0.1000")]
    assert rows["Mixed"] == [2, "1 of 2", COST_UNKNOWN, "", 1, COST_UNKNOWN]
    assert rows["Old"] == [0, "0 of 0", Decimal("0.00"), "", 1, None]
    assert rows["All campaigns"] == [5, "4 of 5", COST_UNKNOWN, "", 4, COST_UNKNOWN]


@pytest.mark.parametrize("direct", [False, True], ids=["roll-ups", "direct"])
def test_the_dashboard_shows_the_sms_cost_table_in_the_conversion_section(direct):
    from campaigns.results.rollups import results_rollups_refresh

    history()
    results_rollups_refresh()
    tables = selectors.goal_dashboard(PERIOD, window=WEEK, direct=direct)

    [table] = [table for table in tables["conversion"] if table.key == "sms_cost"]
    assert {row[0] for row in table.rows} == {"Texts", "Mixed", "Old", "All campaigns"}


def test_without_texts_the_table_is_empty():
    assert sms_cost_per_conversion(PERIOD, [], attributed=[]).rows == []


def test_a_campaigns_cost_per_conversion_per_channel():
    texts = history()

    results = campaign_results(campaign=texts, window=WEEK, now=march(20))

    rows = {row[0]: row[1:] for row in results.cost.rows}
    assert rows["SMS"] == [3, "3 of 3", Decimal("0.20"), "USD", 2, Decimal("0.1000")]
    assert rows["Email"] == [2, "0 of 2", COST_UNKNOWN, "", 1, COST_UNKNOWN]


def test_the_channel_costs_take_one_query(django_assert_num_queries):
    texts = history()
    with django_assert_num_queries(1):
        table = campaign_channel_costs(texts, sent={"sms": 3, "email": 2}, purchases={"sms": 2})
    assert [row[:3] for row in table.rows] == [["Email", 2, "0 of 2"], ["SMS", 3, "3 of 3"]]


def test_texts_priced_in_two_currencies_are_not_added_together():
    spend = Spend()
    spend.add(currency="USD", sent=2, priced=2, micros=20_000)
    spend.add(currency="EUR", sent=1, priced=1, micros=30_000)

    assert spend.cells(purchases=3) == ["3 of 3", "0.03 EUR + 0.02 USD", "several", "several currencies"]
