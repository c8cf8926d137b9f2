"""Profile merge combines loyalty accounts; erasure closes them; both keep the ledger adding up."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.exceptions import MergeError
from customers.models import Purchase
from customers.services import customer_erase, customer_merge, purchase_record
from loyalty.exceptions import InvalidCardNumber, NotEnrolled
from loyalty.models import CouponCode, LedgerEntry, LoyaltyAccount, Programme, TierChange
from loyalty.selectors import account_by_card, account_find, ledger_balance
from loyalty.services import (
    account_enrol,
    accounts_erase,
    accounts_merge,
    coupon_redeem,
    points_adjust,
    points_expire_account,
    points_expiring,
    points_redeem,
    purchase_earn,
    purchase_refund,
)
from loyalty.services.accounts import account_lock, ledger_append
from loyalty.services.tiers import tier_review_account
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.loyalty import CouponCodeFactory, OfferFactory, ProgrammeFactory, TierFactory

T0 = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)


@pytest.fixture
def staff(db):
    return MarketingUserFactory()


@pytest.fixture
def pair(db):
    return CustomerFactory(email="survivor@example.com"), CustomerFactory(email="other@example.com")


def _earn(account, points, key):
    points_adjust(account=account, points=points, reason="Seed", user=None, idempotency_key=key)


def _assert_consistent(*accounts):
    for account in accounts:
        account.refresh_from_db()
        assert account.points_balance == ledger_balance(account)


def test_merge_without_accounts_changes_nothing_in_loyalty(pair, staff):
    survivor, other = pair
    customer_merge(survivor=survivor, other=other, user=staff)
    assert not LoyaltyAccount.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_merge_where_only_the_survivor_has_an_account(pair, programme, staff):
    survivor, other = pair
    account, _ = account_enrol(customer=survivor, programme=programme)
    _earn(account, 40, "s")
    customer_merge(survivor=survivor, other=other, user=staff)
    account.refresh_from_db()
    assert (account.customer, account.status, account.points_balance) == (survivor, "active", 40)
    assert LedgerEntry.objects.count() == 1


def test_merge_where_only_the_other_has_an_account_moves_it_whole(pair, programme, staff):
    survivor, other = pair
    account, _ = account_enrol(customer=other, programme=programme)
    _earn(account, 75, "o")
    card = account.card_number
    customer_merge(survivor=survivor, other=other, user=staff)
    account.refresh_from_db()
    assert (account.customer, account.status, account.card_number) == (survivor, "active", card)
    assert account.points_balance == 75 == ledger_balance(account)
    assert LedgerEntry.objects.count() == 1  # the ledger is untouched: the account itself moved
    assert account_find(query="survivor@example.com", programme=programme) == account


@pytest.fixture
def both(pair, programme):
    survivor, other = pair
    mine, _ = account_enrol(customer=survivor, programme=programme)
    theirs, _ = account_enrol(customer=other, programme=programme)
    _earn(mine, 100, "m")
    _earn(theirs, 300, "t")
    points_redeem(account=theirs, points=50, channel="online", order_reference="W-1", idempotency_key="spend")
    return mine, theirs


def test_merge_of_two_accounts_moves_the_balance_through_the_ledger(pair, both, staff, django_assert_max_num_queries):
    survivor, other = pair
    mine, theirs = both
    with django_assert_max_num_queries(36):
        customer_merge(survivor=survivor, other=other, user=staff)
    _assert_consistent(mine, theirs)
    assert mine.points_balance == 100 + 250
    assert theirs.points_balance == 0
    assert (theirs.status, theirs.merged_into, theirs.customer) == ("closed", mine, other)
    assert theirs.closed_at is not None
    out = LedgerEntry.objects.get(account=theirs, kind="merge")
    moved_in = LedgerEntry.objects.filter(account=mine, kind="merge")
    assert out.points == -250
    assert sum(e.points for e in moved_in) == 250
    assert all(e.acting_user == staff for e in [out, *moved_in])
    assert mine.card_number in out.reason
    assert all(theirs.card_number in e.reason for e in moved_in)
    # The merged profile's card now opens the surviving account.
    assert account_by_card(card_number=theirs.card_number) == mine
    assert account_find(query=theirs.card_number, programme=mine.programme) == mine
    assert account_find(query="survivor@example.com", programme=mine.programme) == mine


def test_merging_twice_is_a_no_op(pair, both, staff):
    survivor, other = pair
    mine, theirs = both
    customer_merge(survivor=survivor, other=other, user=staff)
    entries = LedgerEntry.objects.count()
    assert accounts_merge(survivor=survivor, other=other, user=staff) == []
    with pytest.raises(MergeError):
        customer_merge(survivor=survivor, other=other, user=staff)
    assert LedgerEntry.objects.count() == entries
    _assert_consistent(mine, theirs)
    assert (mine.points_balance, theirs.points_balance) == (350, 0)
    # Nothing lands on the closed account any more; its card opens the surviving one.
    with pytest.raises(NotEnrolled, match="closed"):
        points_adjust(account=theirs, points=5, reason="Late goodwill", user=staff, idempotency_key="late")


def test_a_failing_merge_leaves_both_accounts_as_they_were(pair, both, staff, monkeypatch):
    from loyalty.services import lifecycle

    survivor, other = pair
    mine, theirs = both

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(lifecycle, "tier_upgrade_if_qualified", broken)
    with pytest.raises(RuntimeError):
        customer_merge(survivor=survivor, other=other, user=staff)
    other.refresh_from_db()
    assert other.merged_into is None
    _assert_consistent(mine, theirs)
    assert (mine.points_balance, theirs.points_balance, theirs.status) == (100, 250, "active")


def test_merge_keeps_the_better_tier_and_qualification_counts_both(pair, programme, staff):
    survivor, other = pair
    member = TierFactory(programme=programme, name="Member", rank=1, threshold_points=0)
    gold = TierFactory(programme=programme, name="Gold", rank=2, threshold_points=100)
    TierFactory(programme=programme, name="Platinum", rank=3, threshold_points=1000)
    mine, _ = account_enrol(customer=survivor, programme=programme)
    theirs, _ = account_enrol(customer=other, programme=programme)
    purchase, _ = purchase_record(
        customer=other, channel="online", source="online_shop", external_ref="W-9", amount="120.00"
    )
    purchase_earn(purchase=purchase, programme=programme)
    theirs.refresh_from_db()
    assert (mine.tier, theirs.tier) == (member, gold)

    customer_merge(survivor=survivor, other=other, user=staff)
    mine.refresh_from_db()
    assert mine.tier == gold
    change = TierChange.objects.filter(account=mine).first()
    assert (change.reason, change.from_tier, change.to_tier) == ("merge", member, gold)
    # What the other profile earned keeps qualifying the survivor: no grace period, no downgrade.
    assert tier_review_account(account=mine, now=mine.tier_since + timedelta(days=60)) is None
    mine.refresh_from_db()
    assert (mine.tier, mine.tier_grace_until) == (gold, None)


def test_merge_reaches_a_tier_neither_had_alone(pair, programme, staff):
    survivor, other = pair
    TierFactory(programme=programme, name="Member", rank=1, threshold_points=0)
    gold = TierFactory(programme=programme, name="Gold", rank=2, threshold_points=100)
    mine, _ = account_enrol(customer=survivor, programme=programme)
    account_enrol(customer=other, programme=programme)
    for customer, ref in ((survivor, "W-1"), (other, "W-2")):
        purchase, _ = purchase_record(
            customer=customer, channel="online", source="online_shop", external_ref=ref, amount="60.00"
        )
        purchase_earn(purchase=purchase, programme=programme)
    customer_merge(survivor=survivor, other=other, user=staff)
    mine.refresh_from_db()
    assert mine.tier == gold
    assert mine.points_balance == 120 == ledger_balance(mine)


def test_merge_keeps_the_expiry_dates_of_moved_points(pair, staff):
    survivor, other = pair
    programme = ProgrammeFactory(name="Expiring", points_expire_after_days=365)
    with time_machine.travel(T0, tick=False):
        mine, _ = account_enrol(customer=survivor, programme=programme)
        theirs, _ = account_enrol(customer=other, programme=programme)
        _earn(theirs, 100, "a")  # expires T0 + 365 d
    with time_machine.travel(T0 + timedelta(days=30), tick=False):
        points_redeem(account=theirs, points=30, channel="online", order_reference="W", idempotency_key="r")
    with time_machine.travel(T0 + timedelta(days=60), tick=False):
        _earn(theirs, 50, "b")  # expires T0 + 425 d
        _earn(mine, 20, "c")  # expires T0 + 425 d
    with time_machine.travel(T0 + timedelta(days=90), tick=False):
        customer_merge(survivor=survivor, other=other, user=staff)
    moved = list(LedgerEntry.objects.filter(account=mine, kind="merge").order_by("expires_at"))
    assert [(e.points, e.expires_at) for e in moved] == [
        (70, T0 + timedelta(days=365)),
        (50, T0 + timedelta(days=425)),
    ]
    # First in, first out: the 70 left of the oldest credit expire on their original date.
    assert points_expiring(account=mine, until=T0 + timedelta(days=365)) == 70
    assert points_expire_account(account=mine, now=T0 + timedelta(days=366)) == 70
    _assert_consistent(mine, theirs)
    assert mine.points_balance == 70


def test_points_due_to_expire_expire_on_their_own_account_before_the_merge(pair, staff):
    survivor, other = pair
    programme = ProgrammeFactory(name="Expiring", points_expire_after_days=30)
    with time_machine.travel(T0, tick=False):
        mine, _ = account_enrol(customer=survivor, programme=programme)
        theirs, _ = account_enrol(customer=other, programme=programme)
        _earn(theirs, 40, "old")
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        _earn(theirs, 10, "new")
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        customer_merge(survivor=survivor, other=other, user=staff)
    assert LedgerEntry.objects.get(account=theirs, kind="expire").points == -40
    assert sum(LedgerEntry.objects.filter(account=mine, kind="merge").values_list("points", flat=True)) == 10
    _assert_consistent(mine, theirs)


def test_merge_hands_over_unique_codes_and_refunds_find_the_points(pair, both, programme, staff, store):
    survivor, other = pair
    mine, theirs = both
    code = CouponCodeFactory(offer=OfferFactory(programme=programme), account=theirs)
    purchase, _ = purchase_record(
        customer=other, channel=Purchase.Channel.STORE, source="till", external_ref="R-1", amount="40.00", store=store
    )
    purchase_earn(purchase=purchase, programme=programme)
    customer_merge(survivor=survivor, other=other, user=staff)
    code.refresh_from_db()
    assert code.account == mine
    assert coupon_redeem(code=code.code, customer=survivor, channel="online", order_reference="W", idempotency_key="c")[
        1
    ]
    result = purchase_refund(purchase=purchase, programme=programme)
    assert (result.taken, result.entry.account) == (40, mine)
    _assert_consistent(mine, theirs)
    assert mine.points_balance == 350


def test_accounts_in_other_programmes_are_handled_one_by_one(pair, programme, staff):
    survivor, other = pair
    second = ProgrammeFactory(name="Coffee Club")
    mine, _ = account_enrol(customer=survivor, programme=programme)
    theirs, _ = account_enrol(customer=other, programme=programme)
    coffee, _ = account_enrol(customer=other, programme=second)
    _earn(theirs, 10, "t")
    customer_merge(survivor=survivor, other=other, user=staff)
    coffee.refresh_from_db()
    _assert_consistent(mine, theirs)
    assert (coffee.customer, coffee.status) == (survivor, "active")
    assert mine.points_balance == 10


# --- Erasure ---------------------------------------------------------------------------------------


def test_erasure_closes_the_account_and_keeps_the_amounts(account, programme, staff, store):
    _earn(account, 300, "seed")
    points_adjust(
        account=account, points=-20, reason="Complaint by Ada about Bob", user=staff, idempotency_key="adjust"
    )
    code = CouponCodeFactory(offer=OfferFactory(programme=programme), account=account)
    old_card = account.card_number

    customer_erase(customer=account.customer, user=staff)

    account.refresh_from_db()
    code.refresh_from_db()
    assert (account.status, account.points_balance) == (LoyaltyAccount.Status.CLOSED, 0)
    assert account.closed_at is not None
    assert account.points_balance == ledger_balance(account)
    forfeit = LedgerEntry.objects.get(account=account, kind="forfeit")
    assert forfeit.points == -280
    assert list(LedgerEntry.objects.filter(account=account).values_list("points", flat=True)) == [300, -20, -280]
    assert not LedgerEntry.objects.filter(reason__contains="Ada").exists()
    assert account.card_number != old_card
    with pytest.raises(InvalidCardNumber):
        account_by_card(card_number=old_card)
    assert code.is_void
    with pytest.raises(NotEnrolled):
        purchase_earn(
            purchase=purchase_record(
                customer=account.customer,
                channel="store",
                source="till",
                external_ref="R-after",
                amount="10.00",
                store=store,
            )[0],
            programme=programme,
        )


def test_erasure_is_idempotent_and_reaches_merged_profiles(account, programme, staff):
    old = CustomerFactory(merged_into=account.customer)
    legacy = LoyaltyAccount.objects.create(customer=old, programme=programme, card_number="0000000000000000")
    _earn(account, 50, "seed")
    customer_erase(customer=account.customer, user=staff)
    entries = LedgerEntry.objects.count()
    customer_erase(customer=account.customer, user=staff)
    accounts_erase(customer=account.customer, user=staff)
    assert LedgerEntry.objects.count() == entries
    legacy.refresh_from_db()
    account.refresh_from_db()
    assert (legacy.status, account.status) == ("closed", "closed")
    assert legacy.card_number != "0000000000000000"
    assert account.points_balance == 0 == ledger_balance(account)


def test_erasure_without_an_account(staff):
    customer = CustomerFactory()
    customer_erase(customer=customer, user=staff)
    assert not LoyaltyAccount.objects.exists()
    assert Programme.objects.count() == 0
    assert CouponCode.objects.count() == 0


def test_closed_accounts_are_not_merged_into_or_out_of(pair, both, staff):
    survivor, other = pair
    mine, theirs = both
    LoyaltyAccount.objects.filter(pk=mine.pk).update(status=LoyaltyAccount.Status.CLOSED)
    with pytest.raises(MergeError, match="card is closed"):
        customer_merge(survivor=survivor, other=other, user=staff)
    other.refresh_from_db()
    assert other.merged_into is None
    LoyaltyAccount.objects.filter(pk=mine.pk).update(status=LoyaltyAccount.Status.ACTIVE)
    LoyaltyAccount.objects.filter(pk=theirs.pk).update(status=LoyaltyAccount.Status.CLOSED)
    customer_merge(survivor=survivor, other=other, user=staff)
    _assert_consistent(mine, theirs)
    assert (mine.points_balance, theirs.points_balance, theirs.merged_into) == (100, 250, None)


def test_cancelling_a_redemption_after_the_merge_restores_points_to_the_survivor(pair, both, staff):
    from loyalty.models import Redemption
    from loyalty.services import redemption_cancel

    survivor, other = pair
    mine, theirs = both
    customer_merge(survivor=survivor, other=other, user=staff)
    redemption_cancel(redemption=Redemption.objects.get(account=theirs), user=staff, reason="Order cancelled")
    _assert_consistent(mine, theirs)
    assert (mine.points_balance, theirs.points_balance) == (400, 0)
    assert LedgerEntry.objects.get(kind="restore").account == mine


# --- Property: moved points keep their first-in-first-out expiry ------------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(min_value=1, max_value=300)),
        st.tuples(st.just("spend"), st.integers(min_value=1, max_value=400)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=60)),
    ),
    max_size=14,
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_merged_points_expire_when_they_would_have_on_their_own_card(ops):
    programme = ProgrammeFactory(name="Expiring", points_expire_after_days=90)
    survivor, other = CustomerFactory(), CustomerFactory()
    mine, _ = account_enrol(customer=survivor, programme=programme)
    theirs, _ = account_enrol(customer=other, programme=programme)
    now, lots = T0, []  # lots: [expires_at, remaining], oldest first
    for i, (op, value) in enumerate(ops):
        if op == "wait":
            now += timedelta(days=value)
            continue
        with transaction.atomic():
            locked = account_lock(theirs)
            if op == "earn":
                ledger_append(account=locked, kind="earn", points=value, idempotency_key=f"op{i}", occurred_at=now)
                lots.append([now + timedelta(days=90), value])
            elif value <= sum(left for _expires, left in lots):
                ledger_append(account=locked, kind="redeem", points=-value, idempotency_key=f"op{i}", occurred_at=now)
                for lot in lots:
                    taken = min(lot[1], value)
                    lot[1], value = lot[1] - taken, value - taken
    with time_machine.travel(now, tick=False):
        customer_merge(survivor=survivor, other=other, user=None)
    live = {}
    for expires_at, left in lots:
        if expires_at > now and left:
            live[expires_at] = live.get(expires_at, 0) + left
    moved = dict(LedgerEntry.objects.filter(account=mine, kind="merge").values_list("expires_at", "points"))
    assert moved == live
    for horizon in live:
        expected = sum(points for expires_at, points in live.items() if expires_at <= horizon)
        assert points_expiring(account=mine, until=horizon) == expected
    _assert_consistent(mine, theirs)
    assert mine.points_balance == sum(live.values())
