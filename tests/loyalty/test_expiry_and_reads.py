"""FIFO expiry by the periodic job, expiring-soon reads, and the customer timeline entries."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from customers.selectors import customer_timeline
from loyalty.models import LedgerEntry, Programme
from loyalty.selectors import accounts_with_points_expiring, ledger_balance, points_expiring_soon, timeline_entries_for
from loyalty.services import account_enrol, coupon_code_create, coupon_redeem, points_redeem
from loyalty.services.accounts import account_lock, ledger_append
from loyalty.tasks import points_expire_due_task, tiers_review_task
from tests.factories import CustomerFactory
from tests.factories.loyalty import OfferFactory

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def expiring_programme(programme):
    Programme.objects.filter(pk=programme.pk).update(points_expire_after_days=90, expiring_soon_days=30)
    programme.refresh_from_db()
    return programme


def _earn(account, points, when, key):
    with transaction.atomic():
        return ledger_append(
            account=account_lock(account), kind="earn", points=points, idempotency_key=key, occurred_at=when
        )[0]


def test_expiry_job_is_fifo_and_idempotent(expiring_programme, store, django_assert_max_num_queries):
    account, _ = account_enrol(customer=CustomerFactory(), programme=expiring_programme)
    _earn(account, 100, T0, "a")  # expires T0+90
    _earn(account, 50, T0 + timedelta(days=40), "b")  # expires T0+130
    account.refresh_from_db()
    with time_machine.travel(T0 + timedelta(days=50), tick=False):
        points_redeem(account=account, points=70, channel="online", order_reference="W-1", idempotency_key="w1")
    # 70 came out of the oldest 100: 30 of it is left to expire at T0+90.
    account.refresh_from_db()
    assert points_expiring_soon(account=account, now=T0 + timedelta(days=70)) == 30
    assert (
        accounts_with_points_expiring(programme=expiring_programme, now=T0 + timedelta(days=70)).get().points_expiring
        == 30
    )
    with time_machine.travel(T0 + timedelta(days=91), tick=False):
        with django_assert_max_num_queries(20):
            points_expire_due_task()
        points_expire_due_task()
    account.refresh_from_db()
    assert account.points_balance == 50 == ledger_balance(account)
    assert list(LedgerEntry.objects.filter(kind="expire").values_list("points", flat=True)) == [-30]
    with time_machine.travel(T0 + timedelta(days=131), tick=False):
        points_expire_due_task()
    account.refresh_from_db()
    assert account.points_balance == 0
    assert not accounts_with_points_expiring(programme=expiring_programme, now=T0 + timedelta(days=131)).exists()


def test_tiers_review_task_downgrades_every_lapsed_account_batch_by_batch(programme, monkeypatch):
    from loyalty import tasks
    from loyalty.models import LoyaltyAccount, TierChange
    from tests.factories.loyalty import TierFactory

    member = TierFactory(programme=programme, name="Member", rank=1, threshold_points=0)
    gold = TierFactory(programme=programme, name="Gold", rank=2, threshold_points=100)
    accounts = [account_enrol(customer=CustomerFactory(), programme=programme)[0] for _ in range(3)]
    # Gold without the points to keep it, and the grace period already over.
    LoyaltyAccount.objects.filter(pk__in=[a.pk for a in accounts]).update(
        tier=gold, tier_grace_until=datetime(2020, 1, 1, tzinfo=UTC)
    )
    monkeypatch.setattr(tasks, "BATCH", 1)

    tiers_review_task()

    assert set(LoyaltyAccount.objects.values_list("tier", flat=True)) == {member.pk}
    assert TierChange.objects.filter(reason=TierChange.Reason.DOWNGRADE).count() == 3


def test_timeline_entries_for_ledger_and_redemptions(account, programme, store):
    coupon_code_create(offer=OfferFactory(programme=programme, name="Spring <script>"), code="SPRING")
    coupon_redeem(
        code="SPRING",
        customer=account.customer,
        channel="store",
        store=store,
        order_reference="R-7",
        idempotency_key="t",
    )
    from loyalty.services import points_adjust

    points_adjust(account=account, points=40, reason="Welcome", user=None, idempotency_key="w")
    entries = timeline_entries_for([account.customer.pk])
    kinds = sorted(e.kind for e in entries)
    assert kinds == ["loyalty", "redemption"]
    redemption = next(e for e in entries if e.kind == "redemption")
    assert redemption.details["Order"] == "R-7"
    assert redemption.details["Code"] == "SPRING"
    timeline = customer_timeline(account.customer, extra_sources=[timeline_entries_for])
    assert {e.kind for e in timeline} >= {"loyalty", "redemption"}
    assert timeline_entries_for([CustomerFactory().pk]) == []
