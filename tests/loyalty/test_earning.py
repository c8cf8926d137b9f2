"""Earning from purchases: once per purchase, net of discounts, bonus windows in local time, tiers."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from customers.models import Purchase
from customers.services import purchase_record
from loyalty.exceptions import NotEnrolled
from loyalty.models import BonusWindow, LedgerEntry, Programme, TierChange
from loyalty.selectors import ledger_balance
from loyalty.services import account_enrol, purchase_earn, purchase_refund_reverse
from loyalty.services.tiers import tier_review_account
from tests.factories import CustomerFactory, PurchaseFactory, StoreFactory
from tests.factories.loyalty import BonusWindowFactory, TierFactory


def _store_purchase(customer, store, amount="40.00", discount="0", ref=None, when=None):
    purchase, _ = purchase_record(
        customer=customer,
        channel=Purchase.Channel.STORE,
        source=Purchase.Source.TILL,
        external_ref=ref or f"R-{timezone.now().timestamp()}-{amount}",
        amount=amount,
        discount_amount=discount,
        store=store,
        occurred_at=when,
    )
    return purchase


def test_a_purchase_earns_once(account, programme, store):
    purchase = _store_purchase(account.customer, store, "40.00")
    first = purchase_earn(purchase=purchase, programme=programme)
    again = purchase_earn(purchase=purchase, programme=programme)
    assert (first.total, first.created) == (40, True)
    assert (again.total, again.created) == (40, False)
    account.refresh_from_db()
    assert account.points_balance == 40 == ledger_balance(account)
    assert LedgerEntry.objects.filter(account=account).count() == 1


def test_discounts_and_reward_value_never_earn(account, programme, store):
    purchase = _store_purchase(account.customer, store, "40.00", discount="15.00")
    assert purchase_earn(purchase=purchase, programme=programme).total == 25


def test_percent_back_rounding_and_minimum_spend(account, programme, store):
    Programme.objects.filter(pk=programme.pk).update(
        points_per_unit=0, percent_back=Decimal("1"), rounding=Programme.Rounding.NEAREST, minimum_spend=5
    )
    programme.refresh_from_db()
    # 1 % back of 12.50 = 0.125 currency = 12.5 points at 0.01 each -> 13 (half up)
    assert purchase_earn(purchase=_store_purchase(account.customer, store, "12.50"), programme=programme).total == 13
    assert purchase_earn(purchase=_store_purchase(account.customer, store, "4.99"), programme=programme).total == 0


def test_anonymous_or_unenrolled_buyers_earn_nothing(programme, store):
    purchase = _store_purchase(None, store)
    with pytest.raises(NotEnrolled):
        purchase_earn(purchase=purchase, programme=programme)
    with pytest.raises(NotEnrolled):
        purchase_earn(purchase=_store_purchase(CustomerFactory(), store), programme=programme)
    assert not LedgerEntry.objects.exists()


def test_points_earned_by_a_merged_profile_go_to_the_survivor(account, programme, store):
    old = CustomerFactory(merged_into=account.customer)
    assert purchase_earn(purchase=_store_purchase(old, store, "10.00"), programme=programme).account == account


def test_refund_reverses_earned_points_once(account, programme, store):
    purchase = _store_purchase(account.customer, store, "40.00")
    purchase_earn(purchase=purchase, programme=programme)
    entry = purchase_refund_reverse(purchase=purchase, programme=programme)
    again = purchase_refund_reverse(purchase=purchase, programme=programme)
    assert entry.points == -40
    assert again.pk == entry.pk
    account.refresh_from_db()
    assert account.points_balance == 0 == ledger_balance(account)


# --- Tiers -------------------------------------------------------------------------------------


@pytest.fixture
def tiers(programme):
    return (
        TierFactory(programme=programme, name="Member", rank=1, threshold_points=0),
        TierFactory(programme=programme, name="Gold", rank=2, threshold_points=100, multiplier=Decimal("1.5")),
    )


def test_tier_upgrade_on_earn_then_multiplier_applies(programme, store, tiers):
    member, gold = tiers
    account, _ = account_enrol(customer=CustomerFactory(), programme=programme)
    assert account.tier == member
    result = purchase_earn(purchase=_store_purchase(account.customer, store, "100.00"), programme=programme)
    assert result.tier_change.to_tier == gold
    account.refresh_from_db()
    assert account.tier == gold
    assert purchase_earn(purchase=_store_purchase(account.customer, store, "10.00"), programme=programme).total == 15
    assert list(TierChange.objects.filter(account=account).values_list("reason", flat=True)) == ["upgrade", "enrol"]


def test_downgrade_only_after_the_grace_period(programme, store, tiers):
    member, gold = tiers
    start = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        account, _ = account_enrol(customer=CustomerFactory(), programme=programme)
        purchase_earn(purchase=_store_purchase(account.customer, store, "120.00"), programme=programme)
    account.refresh_from_db()
    assert account.tier == gold
    # Still within the 365-day window: nothing happens.
    assert tier_review_account(account=account, now=start + timedelta(days=300)) is None
    lapsed = start + timedelta(days=366)
    assert tier_review_account(account=account, now=lapsed) is None
    account.refresh_from_db()
    assert account.tier == gold
    assert account.tier_grace_until == lapsed + timedelta(days=30)
    assert tier_review_account(account=account, now=lapsed + timedelta(days=29)) is None
    change = tier_review_account(account=account, now=lapsed + timedelta(days=31))
    assert (change.from_tier, change.to_tier, change.reason) == (gold, member, "downgrade")
    account.refresh_from_db()
    assert account.tier == member
    assert account.tier_grace_until is None


# --- Bonus windows -----------------------------------------------------------------------------


def _window(programme, **kwargs):
    defaults = {"starts_on": date(2026, 3, 1), "ends_on": date(2026, 3, 15)}
    return BonusWindowFactory(programme=programme, **(defaults | kwargs))


@pytest.mark.parametrize(
    ("utc_moment", "in_window"),
    [
        # Sunday 1 March 2026, New York on EST (UTC-5)
        (datetime(2026, 3, 1, 13, 30, tzinfo=UTC), False),  # 08:30 local
        (datetime(2026, 3, 1, 14, 30, tzinfo=UTC), True),  # 09:30 local
        (datetime(2026, 3, 1, 15, 30, tzinfo=UTC), True),  # 10:30 local
        # Sunday 8 March 2026: clocks go forward at 02:00, New York on EDT (UTC-4)
        (datetime(2026, 3, 8, 13, 30, tzinfo=UTC), True),  # 09:30 local (08:30 if the offset were fixed)
        (datetime(2026, 3, 8, 15, 30, tzinfo=UTC), False),  # 11:30 local (10:30 if the offset were fixed)
        # Monday 9 March 2026, 09:30 local: wrong weekday
        (datetime(2026, 3, 9, 13, 30, tzinfo=UTC), False),
    ],
)
def test_bonus_window_in_store_local_time_across_dst(account, programme, store, utc_moment, in_window):
    _window(programme, days_of_week="7", start_time=time(9), end_time=time(11))
    with time_machine.travel(utc_moment, tick=False):
        purchase = _store_purchase(account.customer, store, "30.00")
        result = purchase_earn(purchase=purchase, programme=programme)
    assert result.base_points == 30
    assert result.bonus_points == (30 if in_window else 0)


def test_online_purchase_uses_the_customers_zone(programme):
    customer = CustomerFactory(time_zone="Asia/Tokyo")
    account, _ = account_enrol(customer=customer, programme=programme)
    _window(programme, start_time=time(9), end_time=time(11), applies_in_store=True)
    # 01:00 UTC is 10:00 in Tokyo and 20:00 the day before in New York
    purchase = PurchaseFactory(customer=customer, occurred_at=datetime(2026, 3, 4, 1, 0, tzinfo=UTC), amount=20)
    assert purchase_earn(purchase=purchase, programme=programme).bonus_points == 20
    assert account.pk


def test_window_limited_to_other_stores_or_to_a_segment_does_not_apply(account, programme, store):
    _window(programme, stores=[StoreFactory(code="la-1", time_zone="America/Los_Angeles")])
    _window(programme, segment_reference="vip")
    purchase = _store_purchase(account.customer, store, "30.00", when=datetime(2026, 3, 4, 18, tzinfo=UTC))
    assert purchase_earn(purchase=purchase, programme=programme).bonus_points == 0


def test_best_window_wins_and_stacking_windows_add(account, programme, store):
    _window(programme, name="Double", multiplier=Decimal("2"), combine=BonusWindow.Combine.BEST)
    _window(programme, name="Triple", multiplier=Decimal("3"), combine=BonusWindow.Combine.BEST)
    _window(programme, name="Fixed 5", kind=BonusWindow.Kind.FIXED, fixed_points=5, combine="stack")
    purchase = _store_purchase(account.customer, store, "10.00", when=datetime(2026, 3, 4, 18, tzinfo=UTC))
    result = purchase_earn(purchase=purchase, programme=programme)
    assert sorted(result.bonuses) == [("Fixed 5", 5), ("Triple", 20)]
    assert result.total == 35


def test_budget_and_per_customer_limit_cap_the_bonus(programme, store):
    window = _window(programme, budget_points=25, per_customer_limit=15)
    when = datetime(2026, 3, 4, 18, tzinfo=UTC)
    first, second = (account_enrol(customer=CustomerFactory(), programme=programme)[0] for _ in range(2))
    awarded = [
        purchase_earn(purchase=_store_purchase(a.customer, store, "10.00", when=when), programme=programme).bonus_points
        for a in (first, first, second, second)
    ]
    assert awarded == [10, 5, 10, 0]
    window.refresh_from_db()
    assert window.points_issued == 25
