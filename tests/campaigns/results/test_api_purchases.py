"""An order sent through the API counts in the dashboard's revenue like any other purchase."""

from decimal import Decimal

import pytest

from campaigns.results import selectors
from campaigns.results.rollups import results_rollups_refresh
from customers.services.orders import order_clean, order_record
from tests.campaigns.results.world import PERIOD, buy, march
from tests.factories import CustomerFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("direct", [False, True], ids=["roll-ups", "direct"])
def test_an_api_order_is_online_revenue_and_an_api_till_receipt_in_store_revenue(direct):
    store = StoreFactory()
    buy(CustomerFactory(), march(2), "10.00")
    for ref, channel, amount in (("W-1", "online", "40.00"), ("T-1", "store", "25.00")):
        order, errors = order_clean(
            {
                "external_ref": ref,
                "amount": amount,
                "currency": "USD",
                "occurred_at": march(3).isoformat(),
                "channel": channel,
                "store": store.code if channel == "store" else None,
                "customer": {"email": "shopper@example.com"},
            },
            now=march(4),
        )
        assert errors == []
        order_record(order=order)

    results_rollups_refresh()
    rows = {row[0]: row[1:] for row in selectors.revenue(PERIOD, direct=direct).rows}

    assert rows["Online"][:2] == [2, Decimal("50.00")]
    assert rows["In store"][:2] == [1, Decimal("25.00")]
