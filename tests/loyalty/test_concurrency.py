"""Real concurrent redemptions on PostgreSQL: processes with their own connections, released together."""

import pytest
from django.db import connection

from loyalty.models import CouponCode, LedgerEntry, Redemption
from loyalty.selectors import ledger_balance
from loyalty.services import account_enrol, coupon_redeem, points_adjust, points_redeem
from tests.concurrency import race
from tests.factories import CustomerFactory, StoreFactory
from tests.factories.loyalty import CouponCodeFactory, OfferFactory, ProgrammeFactory

REFUSALS = ("CouponError", "InsufficientPoints")


def _race(count, attempt):
    """Run ``attempt(i)`` in ``count`` processes at once; returns each one's value, ``"refused"`` for an
    expected refusal, or ``"error: ..."``."""
    outcomes = race(*(lambda i=i: attempt(i) for i in range(count)))
    results = []
    for outcome in outcomes:
        if outcome.ok:
            results.append(outcome.value)
        elif outcome.error.split(":")[0] in REFUSALS:
            results.append("refused")
        else:
            results.append(f"error: {outcome.error}")
    return results


@pytest.fixture
def setup(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    programme = ProgrammeFactory()
    store = StoreFactory(code="race-1")
    return programme, store


@pytest.mark.postgres
def test_fifty_simultaneous_redemptions_of_one_single_use_code(setup):
    programme, store = setup
    code = CouponCodeFactory(offer=OfferFactory(programme=programme), max_uses=1)
    customers = [CustomerFactory() for _ in range(50)]
    for customer in customers:
        account_enrol(customer=customer, programme=programme)

    def attempt(i):
        coupon_redeem(
            code=code.code,
            customer=customers[i],
            channel="store",
            store=store,
            order_reference=f"R-{i}",
            idempotency_key=f"race-{i}",
        )
        return "ok"

    results = _race(50, attempt)
    assert sorted(set(results)) == ["ok", "refused"], results
    assert results.count("ok") == 1
    code.refresh_from_db()
    assert code.uses == 1
    assert Redemption.objects.filter(coupon_code=code).count() == 1


@pytest.mark.postgres
def test_thirty_simultaneous_fifty_point_redemptions_against_one_hundred_points(setup):
    programme, store = setup
    account, _ = account_enrol(customer=CustomerFactory(), programme=programme)
    points_adjust(account=account, points=100, reason="Seed", user=None, idempotency_key="seed")

    def attempt(i):
        points_redeem(
            account=account,
            points=50,
            channel="store",
            store=store,
            order_reference=f"R-{i}",
            idempotency_key=f"spend-{i}",
        )
        return "ok"

    results = _race(30, attempt)
    assert results.count("ok") == 2, results
    assert results.count("refused") == 28, results
    account.refresh_from_db()
    assert account.points_balance == 0 == ledger_balance(account)
    assert LedgerEntry.objects.filter(account=account, kind="redeem").count() == 2
    assert CouponCode.objects.count() == 0


@pytest.mark.postgres
def test_bonus_budget_holds_under_simultaneous_purchases(setup):
    from customers.models import Purchase
    from loyalty.models import BonusWindow
    from loyalty.services import purchase_earn
    from tests.factories import PurchaseFactory
    from tests.factories.loyalty import BonusWindowFactory

    programme, store = setup
    window = BonusWindowFactory(programme=programme, budget_points=50)
    purchases = []
    for i in range(20):
        customer = CustomerFactory()
        account_enrol(customer=customer, programme=programme)
        purchases.append(
            PurchaseFactory(
                customer=customer, channel=Purchase.Channel.STORE, store=store, amount=10, external_ref=f"B-{i}"
            )
        )

    def attempt(i):
        return purchase_earn(purchase=purchases[i], programme=programme).bonus_points

    results = _race(20, attempt)
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 50
    window.refresh_from_db()
    assert window.points_issued == 50
    assert BonusWindow.objects.get().points_issued == sum(
        LedgerEntry.objects.filter(bonus_window=window).values_list("points", flat=True)
    )


@pytest.mark.postgres
def test_a_merge_racing_with_adjustments_on_the_merged_account_loses_no_points(setup):
    from customers.services import customer_merge
    from loyalty.exceptions import NotEnrolled
    from loyalty.models import LoyaltyAccount
    from tests.factories import MarketingUserFactory

    programme, _store = setup
    survivor, other = CustomerFactory(), CustomerFactory()
    mine, _ = account_enrol(customer=survivor, programme=programme)
    theirs, _ = account_enrol(customer=other, programme=programme)
    points_adjust(account=mine, points=100, reason="Seed", user=None, idempotency_key="seed")
    points_adjust(account=theirs, points=300, reason="Seed", user=None, idempotency_key="seed")
    staff = MarketingUserFactory()

    def attempt(i):
        if i == 0:
            customer_merge(survivor=survivor, other=other, user=staff)
            return "merged"
        try:
            points_adjust(account=theirs, points=10, reason="Goodwill", user=None, idempotency_key=f"race-{i}")
        except NotEnrolled:
            return "closed"
        return "ok"

    results = _race(12, attempt)
    assert not [r for r in results if r.startswith("error")], results
    assert results.count("merged") == 1
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (theirs.status, theirs.points_balance) == (LoyaltyAccount.Status.CLOSED, 0)
    assert mine.points_balance == 400 + 10 * results.count("ok")
    assert mine.points_balance == ledger_balance(mine)
    assert theirs.points_balance == ledger_balance(theirs) == 0
