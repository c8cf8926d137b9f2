"""A loyalty bonus window limited to a segment gives its bonus only to that segment's members."""

from datetime import UTC, date, datetime

import pytest

from customers.models import Purchase
from customers.services import purchase_record
from loyalty.services import account_enrol, purchase_earn
from tests.factories import CustomerFactory, StoreFactory
from tests.factories.campaigns import SegmentFactory
from tests.factories.loyalty import BonusWindowFactory, ProgrammeFactory

pytestmark = pytest.mark.django_db

VIP_RULES = {"match": "all", "rules": [{"type": "attribute", "key": "vip", "op": "eq", "value": 1}]}


def _earn(customer, programme, store, ref):
    purchase, _ = purchase_record(
        customer=customer,
        channel=Purchase.Channel.STORE,
        source=Purchase.Source.TILL,
        external_ref=ref,
        amount="30.00",
        store=store,
        occurred_at=datetime(2026, 3, 4, 18, tzinfo=UTC),
    )
    return purchase_earn(purchase=purchase, programme=programme)


@pytest.fixture
def setting():
    programme = ProgrammeFactory()
    store = StoreFactory(code="seg-store")
    SegmentFactory(name="VIPs", rules=VIP_RULES)
    BonusWindowFactory(
        programme=programme, segment_reference="VIPs", starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 15)
    )
    return programme, store


def test_members_of_the_segment_get_the_bonus(setting):
    programme, store = setting
    vip = CustomerFactory(attributes={"vip": 1})
    account_enrol(customer=vip, programme=programme)
    assert _earn(vip, programme, store, "V-1").bonus_points == 30


def test_others_do_not(setting):
    programme, store = setting
    regular = CustomerFactory(attributes={})
    account_enrol(customer=regular, programme=programme)
    assert _earn(regular, programme, store, "R-1").bonus_points == 0


def test_an_unknown_or_inactive_segment_matches_nobody(setting):
    programme, store = setting
    from campaigns.models import Segment

    Segment.objects.filter(name="VIPs").update(is_active=False)
    vip = CustomerFactory(attributes={"vip": 1})
    account_enrol(customer=vip, programme=programme)
    assert _earn(vip, programme, store, "V-2").bonus_points == 0
