"""Tiers: qualification over a rolling window, upgrade at once on earn, downgrade after a grace period."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.transactions import atomic_retry
from loyalty.lock_objects import account_person_lock
from loyalty.models import LedgerEntry, LoyaltyAccount, Programme, Tier, TierChange


def tier_for_value(*, programme: Programme, value) -> Tier | None:
    """The best tier whose threshold ``value`` reaches (by the programme's qualification basis)."""
    field = (
        "threshold_spend" if programme.qualification_basis == Programme.QualificationBasis.SPEND else "threshold_points"
    )
    return programme.tiers.filter(**{f"{field}__lte": value}).order_by("-rank").first()


def tier_qualifying_value(*, account: LoyaltyAccount, now: datetime | None = None) -> Decimal:
    """Points earned (net of reversals) or net spend of earning purchases within the window, counting
    what was earned on accounts merged into this one."""
    now = now or timezone.now()
    since = now - timedelta(days=account.programme.qualification_window_days)
    entries = LedgerEntry.objects.filter(
        Q(account=account) | Q(account__merged_into=account), occurred_at__gt=since, occurred_at__lte=now
    )
    if account.programme.qualification_basis == Programme.QualificationBasis.SPEND:
        net = ExpressionWrapper(
            F("purchase__amount") - F("purchase__discount_amount"),
            output_field=DecimalField(max_digits=14, decimal_places=2),
        )
        spend = (
            entries.filter(kind=LedgerEntry.Kind.EARN, purchase__isnull=False, bonus_window__isnull=True)
            .annotate(net=net)
            .aggregate(total=Coalesce(Sum("net"), Decimal("0")))["total"]
        )
        refunded = (
            entries.filter(kind=LedgerEntry.Kind.REVERSE, purchase__isnull=False)
            .values_list("purchase_id", flat=True)
            .distinct()
        )
        if refunded:
            spend -= (
                entries.filter(kind=LedgerEntry.Kind.EARN, purchase_id__in=list(refunded), bonus_window__isnull=True)
                .annotate(net=net)
                .aggregate(total=Coalesce(Sum("net"), Decimal("0")))["total"]
            )
        return max(spend, Decimal("0"))
    total = entries.filter(Q(kind=LedgerEntry.Kind.EARN) | Q(kind=LedgerEntry.Kind.REVERSE)).aggregate(
        total=Coalesce(Sum("points"), 0)
    )["total"]
    return Decimal(max(total, 0))


def tier_upgrade_if_qualified(*, account: LoyaltyAccount, now: datetime | None = None) -> TierChange | None:
    """Move a locked account up at once when it qualifies for a better tier; never moves it down.

    Called by earning with the account's row lock held. Returns the recorded change, if any.
    """
    now = now or timezone.now()
    value = tier_qualifying_value(account=account, now=now)
    best = tier_for_value(programme=account.programme, value=value)
    current_rank = account.tier.rank if account.tier_id else -1
    if best is None or best.rank <= current_rank:
        if best is not None and best.rank == current_rank and account.tier_grace_until:
            LoyaltyAccount.objects.filter(pk=account.pk).update(tier_grace_until=None)
            account.tier_grace_until = None
        return None
    return _tier_move(account=account, to=best, reason=TierChange.Reason.UPGRADE, value=value, now=now)


def _tier_move(*, account: LoyaltyAccount, to: Tier | None, reason: str, value, now: datetime) -> TierChange:
    """Record the move in the tier history and put the (locked) account in its new tier."""
    change = TierChange.objects.create(
        account=account, from_tier=account.tier, to_tier=to, reason=reason, qualifying_value=value, occurred_at=now
    )
    LoyaltyAccount.objects.filter(pk=account.pk).update(tier=to, tier_since=now, tier_grace_until=None)
    account.tier, account.tier_since, account.tier_grace_until = to, now, None
    return change


def tier_review_account(*, account: LoyaltyAccount, now: datetime | None = None) -> TierChange | None:
    """Downgrade step for one account: start the grace period when it stops qualifying, downgrade
    when the grace period is over, clear it when it qualifies again. Locks the person, then the
    account; a lock conflict is retried.
    """
    return _tier_review_account_locked(account=account, now=now or timezone.now())


@atomic_retry
def _tier_review_account_locked(*, account: LoyaltyAccount, now: datetime) -> TierChange | None:
    locked = account_person_lock(account)
    if locked.tier_id is None:
        return None
    value = tier_qualifying_value(account=locked, now=now)
    deserved = tier_for_value(programme=locked.programme, value=value)
    deserved_rank = deserved.rank if deserved else -1
    if deserved_rank >= locked.tier.rank:
        if locked.tier_grace_until is not None:
            LoyaltyAccount.objects.filter(pk=locked.pk).update(tier_grace_until=None)
        return None
    if locked.tier_grace_until is None:
        grace = now + timedelta(days=locked.programme.downgrade_grace_days)
        LoyaltyAccount.objects.filter(pk=locked.pk).update(tier_grace_until=grace)
        if locked.programme.downgrade_grace_days:
            return None
        locked.tier_grace_until = grace
    if locked.tier_grace_until > now:
        return None
    return _tier_move(account=locked, to=deserved, reason=TierChange.Reason.DOWNGRADE, value=value, now=now)


def tiers_review_due(*, now: datetime | None = None, after_id: int = 0, limit: int = 1000) -> tuple[int, int]:
    """Periodic job: review up to ``limit`` accounts with a tier above the entry tier, by id from
    ``after_id``; returns (last id seen, downgrades). Each account gets its own transaction.
    """
    now = now or timezone.now()
    ids = list(
        LoyaltyAccount.objects.filter(pk__gt=after_id, tier__isnull=False)
        .exclude(tier__threshold_points=0, tier__threshold_spend=0)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    downgrades = 0
    for account in LoyaltyAccount.objects.filter(pk__in=ids).order_by("pk"):
        if tier_review_account(account=account, now=now) is not None:
            downgrades += 1
    return (ids[-1] if ids else after_id), downgrades
