"""Earning from purchases (once per purchase), bonus windows, and reversing points on refunds."""

from __future__ import annotations

import dataclasses
import zoneinfo
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from customers.models import Purchase
from customers.transactions import atomic_retry
from loyalty.exceptions import InvalidAmount, LoyaltyError, NotEnrolled
from loyalty.hooks import customer_in_segment
from loyalty.lock_objects import account_person_lock, bonus_window_qs_select_for_update, person_lock
from loyalty.models import BonusWindow, LedgerEntry, LoyaltyAccount, Programme, TierChange
from loyalty.services.accounts import account_lock, ledger_append
from loyalty.services.tiers import tier_upgrade_if_qualified

_ROUNDING = {
    Programme.Rounding.DOWN: ROUND_FLOOR,
    Programme.Rounding.NEAREST: ROUND_HALF_UP,
    Programme.Rounding.UP: ROUND_CEILING,
}


@dataclasses.dataclass
class EarnResult:
    account: LoyaltyAccount
    base_points: int
    bonus_points: int
    created: bool
    bonuses: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    tier_change: TierChange | None = None

    @property
    def total(self) -> int:
        return self.base_points + self.bonus_points


def purchase_net_amount(purchase: Purchase) -> Decimal:
    """What the customer paid: the amount less discounts and reward value, which never earn."""
    return max(purchase.amount - purchase.discount_amount, Decimal("0"))


def points_for_amount(*, programme: Programme, net: Decimal, multiplier: Decimal = Decimal("1")) -> int:
    """Base points for a net amount: per-unit points plus percent back, times the tier multiplier."""
    if net <= 0 or net < programme.minimum_spend:
        return 0
    raw = net * programme.points_per_unit + net * programme.percent_back / Decimal("100") / programme.point_value
    raw *= multiplier
    return int(raw.quantize(Decimal("1"), rounding=_ROUNDING[programme.rounding]))


def purchase_local_time(purchase: Purchase) -> datetime:
    """The purchase time in the store's zone, or online in the customer's (else their home store's)."""
    zone_name = ""
    if purchase.channel == Purchase.Channel.STORE and purchase.store_id:
        zone_name = purchase.store.time_zone
    elif purchase.customer_id:
        customer = purchase.customer
        zone_name = customer.time_zone or (customer.home_store.time_zone if customer.home_store_id else "")
    return purchase.occurred_at.astimezone(zoneinfo.ZoneInfo(zone_name or settings.TIME_ZONE))


def bonus_window_matches(window: BonusWindow, *, purchase: Purchase, local: datetime) -> bool:
    """Whether ``window`` covers the purchase: dates, weekdays and hours in local time, place, segment."""
    if not window.is_active or not (window.starts_on <= local.date() <= window.ends_on):
        return False
    if window.days_of_week and str(local.isoweekday()) not in window.days_of_week:
        return False
    clock = local.time().replace(tzinfo=None)
    start, end = window.start_time, window.end_time
    if start is not None and end is not None and end <= start:  # an overnight window, e.g. 22:00-02:00
        if not (clock >= start or clock < end):
            return False
    else:
        if start is not None and clock < start:
            return False
        if end is not None and clock >= end:
            return False
    if purchase.channel == Purchase.Channel.STORE:
        if not window.applies_in_store:
            return False
        store_ids = [store.pk for store in window.stores.all()]
        if store_ids and purchase.store_id not in store_ids:
            return False
    elif not window.applies_online:
        return False
    if window.segment_reference:
        return customer_in_segment(segment_reference=window.segment_reference, customer=purchase.customer)
    return True


def _bonus_for(window: BonusWindow, base_points: int) -> int:
    if window.kind == BonusWindow.Kind.FIXED:
        return window.fixed_points
    extra = Decimal(base_points) * (window.multiplier - Decimal("1"))
    return int(extra.quantize(Decimal("1"), rounding=ROUND_FLOOR))


def _result_from_entries(account: LoyaltyAccount, entries: list[LedgerEntry]) -> EarnResult:
    base = sum(e.points for e in entries if e.bonus_window_id is None)
    bonuses = [(e.bonus_window.name, e.points) for e in entries if e.bonus_window_id is not None]
    return EarnResult(
        account=account, base_points=base, bonus_points=sum(p for _, p in bonuses), created=False, bonuses=bonuses
    )


def purchase_earn(*, purchase: Purchase, programme: Programme, acting_user=None) -> EarnResult:
    """Credit the points a purchase earns, once: base points (tier multiplier included) plus bonus
    windows; upgrade the tier at once when the account now qualifies.

    Idempotent per purchase (keys ``purchase:<id>`` and ``purchase:<id>:bonus:<window>``; a second call,
    also one made after the points moved in a merge, returns what the first credited). Locks the buyer
    (``person_lock``: the survivor's account earns for a profile merged away), then their account,
    then matching bonus windows by pk, whose budget (``points_issued`` moved with ``F()``) and
    per-customer limit cap the bonus; a lock conflict is retried. Overlapping windows: every "stack"
    window adds its bonus; of the "best" windows only the largest counts. Raises ``NotEnrolled`` when
    the buyer has no active account in the programme.
    """
    if purchase.customer_id is None:
        raise NotEnrolled("An anonymous purchase earns no points.")
    return _purchase_earn_locked(purchase=purchase, programme=programme, acting_user=acting_user)


@atomic_retry
def _purchase_earn_locked(*, purchase: Purchase, programme: Programme, acting_user) -> EarnResult:
    from loyalty.selectors import account_for_profile

    (buyer,) = person_lock(purchase.customer)
    account = account_for_profile(customer=buyer, programme=programme)
    if account is None or account.status != LoyaltyAccount.Status.ACTIVE:
        raise NotEnrolled(f"This customer has no active {programme.name} account.")
    account = account_lock(account)
    earned = list(
        LedgerEntry.objects.filter(
            account__programme=programme, purchase=purchase, kind=LedgerEntry.Kind.EARN
        ).select_related("bonus_window")
    )
    if earned:
        return _result_from_entries(account, earned)
    multiplier = account.tier.multiplier if account.tier_id else Decimal("1")
    base = points_for_amount(programme=programme, net=purchase_net_amount(purchase), multiplier=multiplier)
    result = EarnResult(account=account, base_points=0, bonus_points=0, created=True)
    if base <= 0:
        return result
    key = f"purchase:{purchase.pk}"
    common = {
        "occurred_at": purchase.occurred_at,
        "store": purchase.store,
        "acting_user": acting_user,
        "purchase": purchase,
    }
    ledger_append(
        account=account,
        kind=LedgerEntry.Kind.EARN,
        points=base,
        idempotency_key=key,
        reason=f"Purchase {purchase.external_ref}"[:300],
        **common,
    )
    result.base_points = base
    for window, bonus in _bonuses_award(account=account, purchase=purchase, base_points=base):
        ledger_append(
            account=account,
            kind=LedgerEntry.Kind.EARN,
            points=bonus,
            idempotency_key=f"{key}:bonus:{window.pk}",
            reason=f"Bonus: {window.name}"[:300],
            bonus_window=window,
            **common,
        )
        result.bonuses.append((window.name, bonus))
        result.bonus_points += bonus
    result.tier_change = tier_upgrade_if_qualified(account=account)
    return result


def _bonuses_award(*, account: LoyaltyAccount, purchase: Purchase, base_points: int) -> list[tuple[BonusWindow, int]]:
    """Choose and reserve the bonuses (caller holds the account lock, inside a transaction)."""
    local = purchase_local_time(purchase)
    candidates = (
        BonusWindow.objects.filter(
            programme=account.programme, is_active=True, starts_on__lte=local.date(), ends_on__gte=local.date()
        )
        .prefetch_related("stores")
        .order_by("pk")
    )
    matching = [w for w in candidates if bonus_window_matches(w, purchase=purchase, local=local)]
    if not matching:
        return []
    # Lock the windows (fixed order, after the account) so budgets are read and moved atomically.
    windows = {w.pk: w for w in bonus_window_qs_select_for_update().filter(pk__in=[w.pk for w in matching])}
    awarded_before = dict(
        LedgerEntry.objects.filter(account=account, bonus_window_id__in=windows, kind=LedgerEntry.Kind.EARN)
        .values("bonus_window_id")
        .annotate(total=Coalesce(Sum("points"), 0))
        .values_list("bonus_window_id", "total")
    )
    offers: list[tuple[BonusWindow, int]] = []
    for window in windows.values():
        bonus = _bonus_for(window, base_points)
        if window.per_customer_limit is not None:
            bonus = min(bonus, window.per_customer_limit - awarded_before.get(window.pk, 0))
        if window.budget_points is not None:
            bonus = min(bonus, window.budget_points - window.points_issued)
        if bonus > 0:
            offers.append((window, bonus))
    chosen = [(w, b) for w, b in offers if w.combine == BonusWindow.Combine.STACK]
    best = [(w, b) for w, b in offers if w.combine == BonusWindow.Combine.BEST]
    if best:
        chosen.append(max(best, key=lambda pair: (pair[1], -pair[0].pk)))
    for window, bonus in chosen:
        BonusWindow.objects.filter(pk=window.pk).update(points_issued=F("points_issued") + bonus)
    return sorted(chosen, key=lambda pair: pair[0].pk)


@dataclasses.dataclass
class RefundResult:
    purchase: Purchase
    #: the REVERSE entry (the first one when the refund was already recorded), or ``None``
    entry: LedgerEntry | None
    created: bool
    #: points the purchase earned, bonuses included
    earned: int = 0

    @property
    def taken(self) -> int:
        return -self.entry.points if self.entry is not None else 0

    @property
    def unrecovered(self) -> int:
        return max(self.earned - self.taken, 0)


def purchase_refund(
    *, purchase: Purchase, programme: Programme, acting_user=None, reason: str = "Refund"
) -> RefundResult:
    """Take back the points a purchase earned (bonuses included) after a refund; idempotent per purchase.

    The points come off the account that holds them now (the survivor's, when the earning account was
    merged). Locks the person holding it, then that account; a lock conflict is retried. The ledger
    never goes negative: when part of those points was already spent, only the balance is taken and
    the reason says what could not be recovered. A repeat returns the first REVERSE entry with
    ``created=False``; a purchase that earned nothing returns no entry.
    Raises ``LoyaltyError`` when nothing is left to take back.
    """
    if purchase.customer_id is None:
        return RefundResult(purchase=purchase, entry=None, created=False)
    first = (
        LedgerEntry.objects.filter(purchase=purchase, account__programme=programme, kind=LedgerEntry.Kind.EARN)
        .select_related("account")
        .first()
    )
    if first is None:
        return RefundResult(purchase=purchase, entry=None, created=False)
    return _purchase_refund_locked(
        purchase=purchase, programme=programme, acting_user=acting_user, reason=reason, earned_on=first.account
    )


@atomic_retry
def _purchase_refund_locked(*, purchase, programme, acting_user, reason, earned_on) -> RefundResult:
    entries = LedgerEntry.objects.filter(purchase=purchase, account__programme=programme)
    key = f"refund:purchase:{purchase.pk}"
    account = account_person_lock(earned_on, surviving=True)
    earned = entries.filter(kind=LedgerEntry.Kind.EARN).aggregate(total=Coalesce(Sum("points"), 0))["total"]
    existing = entries.filter(kind=LedgerEntry.Kind.REVERSE, idempotency_key=key).first()
    if existing is not None:
        return RefundResult(purchase=purchase, entry=existing, created=False, earned=earned)
    taken = min(earned, account.points_balance)
    if taken <= 0:
        raise LoyaltyError("Nothing left to take back: the points were already spent or expired.")
    note = reason.strip() or "Refund"
    if taken < earned:
        note += f" ({earned - taken} points already spent could not be taken back)"
    entry, created = ledger_append(
        account=account,
        kind=LedgerEntry.Kind.REVERSE,
        points=-taken,
        idempotency_key=key,
        reason=f"{note}: purchase {purchase.external_ref}",
        store=purchase.store,
        acting_user=acting_user,
        purchase=purchase,
    )
    return RefundResult(purchase=purchase, entry=entry, created=created, earned=earned)


def purchase_refund_reverse(
    *, purchase: Purchase, programme: Programme, acting_user=None, reason: str = "Refund"
) -> LedgerEntry | None:
    """``purchase_refund`` returning only the REVERSE entry (``None`` when the purchase earned nothing)."""
    return purchase_refund(purchase=purchase, programme=programme, acting_user=acting_user, reason=reason).entry


def till_purchase_refund(*, store, clerk, receipt: str, programme: Programme) -> RefundResult:
    """A clerk takes back the points of a purchase made at their store, found by its receipt number.

    Only a clerk working at the purchase's own store may do this; a receipt of another store is not
    even found. Idempotent (``purchase_refund``): refunding twice takes the points back once. Raises
    ``LoyaltyError`` with a message for the clerk when the receipt is unknown here, earned nothing, or
    its points are all spent.
    """
    from customers.selectors import stores_for_user
    from loyalty.selectors import purchase_for_receipt

    if clerk is None or not stores_for_user(clerk).filter(pk=store.pk).exists():
        raise LoyaltyError("Only a clerk of the store where the purchase was made can refund it.")
    purchase = purchase_for_receipt(store=store, receipt=receipt)
    result = purchase_refund(purchase=purchase, programme=programme, acting_user=clerk, reason="Refund at the till")
    if result.entry is None:
        raise LoyaltyError(f"Receipt {receipt.strip()} earned no {programme.name} points; nothing to take back.")
    return result


def till_purchase_record(
    *,
    account: LoyaltyAccount,
    store,
    clerk,
    receipt: str,
    amount,
    discount_amount=0,
    occurred_at: datetime | None = None,
    categories=(),
) -> tuple[Purchase, EarnResult]:
    """Record an in-store purchase for a member (``customers.services.purchase_record``, with the product
    ``categories`` ticked) and earn on it.

    One transaction: a refused amount or receipt changes nothing. Idempotent per receipt number (a
    repeat returns the first purchase and what it earned, also while the first is still in flight).
    Locks the person first (their survivor, when the card's profile was merged away: the purchase is
    recorded on and earns for the survivor), then the account; a lock conflict is retried. Refuses
    zero, negative and absurd amounts with ``InvalidAmount``; ``CustomerError`` from the purchase
    record is re-raised as ``LoyaltyError``.
    """
    from customers.exceptions import CustomerError
    from loyalty.services.redemptions import clean_money

    amount = clean_money(amount, label="amount")
    discount = clean_money(discount_amount or "0", label="discount", allow_zero=True)
    if discount > amount:
        raise InvalidAmount("The discount cannot exceed the amount.")
    try:
        purchase, result = _till_purchase_record_locked(
            account=account,
            store=store,
            clerk=clerk,
            receipt=receipt,
            amount=amount,
            discount=discount,
            occurred_at=occurred_at,
            categories=categories,
        )
    except CustomerError as exc:
        raise LoyaltyError(str(exc)) from exc
    return purchase, result


@atomic_retry
def _till_purchase_record_locked(*, account, store, clerk, receipt, amount, discount, occurred_at, categories):
    from customers.services import purchase_record

    purchase, _created = purchase_record(
        customer=account.customer,
        channel=Purchase.Channel.STORE,
        source=Purchase.Source.TILL,
        # Receipt numbers repeat across stores; the store code keeps them apart.
        external_ref=f"{store.code}:{(receipt or '').strip()}" if (receipt or "").strip() else "",
        amount=amount,
        discount_amount=discount,
        store=store,
        recorded_by=clerk,
        occurred_at=occurred_at,
        categories=categories,
    )
    result = purchase_earn(purchase=purchase, programme=account.programme, acting_user=clerk)
    return purchase, result
