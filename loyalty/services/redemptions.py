"""Offers, coupon codes and redemptions (code or points, at a till or online), and cancelling them."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from customers.exceptions import InvalidNumber
from customers.models import Customer, Store
from customers.normalization import parse_amount
from customers.transactions import atomic_retry
from loyalty.codes import coupon_code_generate, coupon_code_normalize
from loyalty.exceptions import (
    CouponError,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidAmount,
    LoyaltyError,
    NotEnrolled,
    OfferLimitReached,
)
from loyalty.lock_objects import (
    account_person_lock,
    coupon_code_qs_select_for_update,
    loyalty_account_qs_select_for_update,
    offer_qs_select_for_update,
    person_lock,
)
from loyalty.models import CouponCode, LedgerEntry, LoyaltyAccount, Offer, Redemption
from loyalty.services.accounts import clean_points, ledger_append
from loyalty.services.tiers import tier_upgrade_if_qualified

MAX_ORDER_AMOUNT = Decimal("1000000")
MAX_CODES_PER_BATCH = 100_000
UNKNOWN_CODE = "Unknown code. Check it and try again."


@dataclasses.dataclass(frozen=True)
class CouponPreview:
    code: CouponCode
    offer: Offer
    gives: str
    discount_amount: Decimal


def clean_money(value, *, label: str = "amount", allow_zero: bool = False) -> Decimal:
    try:
        amount = parse_amount(value, label=label)  # plain digits only: "1e3" is not 1000
    except InvalidNumber as exc:
        raise InvalidAmount(str(exc)) from exc
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount(f"The {label} must be more than zero.")
    if amount >= MAX_ORDER_AMOUNT:
        raise InvalidAmount(f"The {label} is implausibly large.")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidAmount(f"The {label} has more than two decimals.")
    return amount


def _clean_reference(order_reference: str) -> str:
    reference = (order_reference or "").strip()
    if not reference or len(reference) > 100 or "\x00" in reference:
        raise LoyaltyError("Give an order or receipt number of at most 100 characters.")
    return reference


def _clean_place(channel: str, store: Store | None) -> None:
    if channel not in Redemption.Channel.values:
        raise LoyaltyError(f"Unknown redemption channel {channel!r}.")
    if channel == Redemption.Channel.STORE and store is None:
        raise LoyaltyError("A redemption in store needs its store.")


def _surviving(customer: Customer) -> Customer:
    while customer.merged_into_id:
        customer = customer.merged_into
    return customer


def _discount_for(offer: Offer, order_amount: Decimal | None) -> Decimal:
    if offer.kind == Offer.Kind.PERCENT_OFF:
        if order_amount is None:
            raise LoyaltyError("A percent-off code needs the order amount.")
        return (order_amount * offer.percent_off / Decimal("100")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if offer.kind == Offer.Kind.AMOUNT_OFF:
        return offer.amount_off if order_amount is None else min(offer.amount_off, order_amount)
    return Decimal("0")


def _check_offer_open(offer: Offer, *, now: datetime) -> None:
    if not offer.is_active:
        raise CouponError("This offer has been withdrawn.")
    if now < offer.valid_from:
        raise CouponError(f"This code is valid from {timezone.localtime(offer.valid_from):%Y-%m-%d %H:%M}.")
    if now >= offer.valid_until:
        raise CouponError(f"This code expired on {timezone.localtime(offer.valid_until):%Y-%m-%d}.")
    if offer.total_limit is not None and offer.redemptions_count >= offer.total_limit:
        raise OfferLimitReached("This offer has been fully redeemed.")


def _check_code(code: CouponCode, *, account: LoyaltyAccount | None, now: datetime) -> None:
    if code.is_void:
        raise CouponError("This code has been cancelled.")
    if code.account_id is not None and (account is None or code.account_id != account.pk):
        raise CouponError("This code was issued to another customer.")
    if code.max_uses is not None and code.uses >= code.max_uses:
        raise CouponError("This code has already been used.")
    _check_offer_open(code.offer, now=now)


def _check_per_customer(offer: Offer, customer: Customer) -> None:
    if offer.per_customer_limit is None:
        return
    used = Redemption.objects.filter(offer=offer, customer=customer, status=Redemption.Status.CONFIRMED).count()
    if used >= offer.per_customer_limit:
        raise OfferLimitReached("This customer has already used this offer as often as it allows.")


def _account_of(customer: Customer, offer: Offer) -> LoyaltyAccount | None:
    from loyalty.selectors import account_for_profile

    return account_for_profile(customer=customer, programme=offer.programme_id)


def coupon_preview(*, code: str, customer: Customer, order_amount=None, now: datetime | None = None) -> CouponPreview:
    """What a code would give this customer now, without redeeming it (read-only).

    Raises ``CouponError`` (unknown, void, used, expired, not yet valid, another customer's, limits).
    """
    now = now or timezone.now()
    normalized = coupon_code_normalize(code)
    amount = clean_money(order_amount, label="order amount") if order_amount not in (None, "") else None
    found = CouponCode.objects.filter(code=normalized).select_related("offer__programme").first()
    if found is None:
        raise CouponError(UNKNOWN_CODE)
    customer = _surviving(customer)
    _check_code(found, account=_account_of(customer, found.offer), now=now)
    _check_per_customer(found.offer, customer)
    return CouponPreview(
        code=found, offer=found.offer, gives=found.offer.gives, discount_amount=_discount_for(found.offer, amount)
    )


def _existing_redemption(idempotency_key: str, *, customer: Customer, **same) -> Redemption | None:
    existing = Redemption.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    if existing.customer_id != customer.pk or any(getattr(existing, k) != v for k, v in same.items()):
        raise IdempotencyConflict("This request key was already used for another redemption.")
    return existing


def coupon_redeem(
    *,
    code: str,
    customer: Customer,
    channel: str,
    order_reference: str,
    idempotency_key: str,
    store: Store | None = None,
    clerk=None,
    order_amount=None,
    now: datetime | None = None,
) -> tuple[Redemption, bool]:
    """Redeem a coupon code for a customer against an order; (redemption, created).

    Idempotent on ``idempotency_key`` (a retry returns the first redemption, also one sent while the
    first is still in flight: the key is looked up again under the locks). Locks, in order: the
    customer (per-customer limit), their account, the code (uses), the offer (total limit); counters
    move with ``F()``; a lock conflict is retried. A bonus-points offer credits the account. Raises ``CouponError`` /
    ``OfferLimitReached`` for a code that cannot be used and ``InvalidAmount`` for a bad order
    amount; nothing changes then.
    """
    now = now or timezone.now()
    normalized = coupon_code_normalize(code)
    reference = _clean_reference(order_reference)
    _clean_place(channel, store)
    amount = clean_money(order_amount, label="order amount") if order_amount not in (None, "") else None
    if not idempotency_key or len(idempotency_key) > 160:
        raise LoyaltyError("A redemption needs a request key of at most 160 characters.")

    customer = _surviving(customer)
    found = CouponCode.objects.filter(code=normalized).values_list("pk", "offer_id", "offer__programme_id").first()
    if found is None:
        raise CouponError(UNKNOWN_CODE)
    code_id, offer_id, programme_id = found
    existing = _existing_redemption(idempotency_key, customer=customer, coupon_code_id=code_id)
    if existing is not None:
        return existing, False
    try:
        return _coupon_redeem_locked(
            customer=customer,
            code_id=code_id,
            offer_id=offer_id,
            programme_id=programme_id,
            channel=channel,
            store=store,
            clerk=clerk,
            reference=reference,
            amount=amount,
            idempotency_key=idempotency_key,
            now=now,
        )
    except IntegrityError:
        # Two requests with the same key raced past the lock (another customer's key); the first won.
        existing = _existing_redemption(idempotency_key, customer=customer, coupon_code_id=code_id)
        if existing is None:
            raise
        return existing, False


@atomic_retry
def _coupon_redeem_locked(
    *, customer, code_id, offer_id, programme_id, channel, store, clerk, reference, amount, idempotency_key, now
) -> tuple[Redemption, bool]:
    from loyalty.selectors import account_for_profile

    (customer,) = person_lock(customer)
    existing = _existing_redemption(idempotency_key, customer=customer, coupon_code_id=code_id)
    if existing is not None:
        return existing, False
    found_account = account_for_profile(customer=customer, programme=programme_id)
    account = (
        loyalty_account_qs_select_for_update().select_related("programme").filter(pk=found_account.pk).first()
        if found_account
        else None
    )
    coupon = coupon_code_qs_select_for_update().get(pk=code_id)
    offer = offer_qs_select_for_update().select_related("programme").get(pk=offer_id)
    coupon.offer = offer
    _check_code(coupon, account=account, now=now)
    _check_per_customer(offer, customer)
    if offer.kind == Offer.Kind.BONUS_POINTS and account is None:
        raise NotEnrolled("Bonus points need a loyalty account; enrol the customer first.")
    discount = _discount_for(offer, amount)
    redemption = Redemption.objects.create(
        kind=Redemption.Kind.CODE,
        customer=customer,
        account=account,
        offer=offer,
        coupon_code=coupon,
        channel=channel,
        store=store,
        clerk=clerk,
        order_reference=reference,
        order_amount=amount,
        discount_amount=discount,
        description=offer.gives,
        idempotency_key=idempotency_key,
    )
    CouponCode.objects.filter(pk=coupon.pk).update(uses=F("uses") + 1)
    Offer.objects.filter(pk=offer.pk).update(redemptions_count=F("redemptions_count") + 1)
    if offer.kind == Offer.Kind.BONUS_POINTS:
        ledger_append(
            account=account,
            kind=LedgerEntry.Kind.EARN,
            points=offer.bonus_points,
            idempotency_key=f"redemption:{redemption.pk}",
            reason=f"Code {coupon.code}: {offer.name}",
            store=store,
            acting_user=clerk,
            redemption=redemption,
        )
        tier_upgrade_if_qualified(account=account)
    return redemption, True


def points_redeem(
    *,
    account: LoyaltyAccount,
    channel: str,
    order_reference: str,
    idempotency_key: str,
    points=None,
    reward: Offer | None = None,
    store: Store | None = None,
    clerk=None,
) -> tuple[Redemption, bool]:
    """Spend points: either ``points`` as money off (``points * point value``) or a ``reward`` offer
    that costs points; (redemption, created).

    Idempotent on ``idempotency_key``, also for a repeat sent while the first is in flight (the key is
    looked up again under the locks). Locks the person, then the account (then the reward offer); the
    balance check and the REDEEM entry happen under that lock, so concurrent spends never overdraw; a
    lock conflict is retried. Raises
    ``InvalidAmount`` (zero, negative, fractional, absurd), ``InsufficientPoints``,
    ``CouponError``/``OfferLimitReached`` for a reward that is closed; nothing changes then.
    """
    reference = _clean_reference(order_reference)
    _clean_place(channel, store)
    if not idempotency_key or len(idempotency_key) > 160:
        raise LoyaltyError("A redemption needs a request key of at most 160 characters.")
    if reward is not None:
        if not reward.points_cost:
            raise LoyaltyError("This offer is not a reward bought with points.")
        points = reward.points_cost
    else:
        points = clean_points(points)
    customer = account.customer
    existing = _existing_redemption(
        idempotency_key, customer=customer, account_id=account.pk, points=points, kind=Redemption.Kind.POINTS
    )
    if existing is not None:
        return existing, False
    try:
        return _points_redeem_locked(
            account=account,
            customer=customer,
            points=points,
            reward=reward,
            channel=channel,
            store=store,
            clerk=clerk,
            reference=reference,
            idempotency_key=idempotency_key,
        )
    except IntegrityError:
        existing = _existing_redemption(idempotency_key, customer=customer, account_id=account.pk, points=points)
        if existing is None:
            raise
        return existing, False


@atomic_retry
def _points_redeem_locked(
    *, account, customer, points, reward, channel, store, clerk, reference, idempotency_key
) -> tuple[Redemption, bool]:
    account = account_person_lock(account)
    existing = _existing_redemption(
        idempotency_key, customer=customer, account_id=account.pk, points=points, kind=Redemption.Kind.POINTS
    )
    if existing is not None:
        return existing, False
    if account.status != LoyaltyAccount.Status.ACTIVE:
        raise NotEnrolled("This account is not active.")
    if reward is not None:
        reward = offer_qs_select_for_update().select_related("programme").get(pk=reward.pk)
        if reward.programme_id != account.programme_id:
            raise LoyaltyError("This reward belongs to another programme.")
        _check_offer_open(reward, now=timezone.now())
        _check_per_customer(reward, customer)
        discount, description = _discount_for(reward, None), f"Reward: {reward.name} ({reward.gives})"
    else:
        discount = (Decimal(points) * account.programme.point_value).quantize(Decimal("0.01"))
        description = f"{points} points for {discount} {account.programme.currency} off"
    if account.points_balance < points:
        raise InsufficientPoints(f"Only {account.points_balance} points available.")
    redemption = Redemption.objects.create(
        kind=Redemption.Kind.POINTS,
        customer=customer,
        account=account,
        offer=reward,
        points=points,
        channel=channel,
        store=store,
        clerk=clerk,
        order_reference=reference,
        discount_amount=discount,
        description=description[:300],
        idempotency_key=idempotency_key,
    )
    if reward is not None:
        Offer.objects.filter(pk=reward.pk).update(redemptions_count=F("redemptions_count") + 1)
    ledger_append(
        account=account,
        kind=LedgerEntry.Kind.REDEEM,
        points=-points,
        idempotency_key=f"redemption:{redemption.pk}",
        reason=description,
        store=store,
        acting_user=clerk,
        redemption=redemption,
    )
    return redemption, True


def redemption_cancel(*, redemption: Redemption, user, reason: str = "") -> Redemption:
    """Cancel a redemption and restore what it took: points back (RESTORE), a use back on the code
    and the offer; bonus points it credited are taken back as far as the balance allows.

    Idempotent (a cancelled redemption stays as it is). Locks the person, then account, code, offer in
    that order; a lock conflict is retried.
    """
    return _redemption_cancel_locked(redemption=redemption, user=user, reason=reason)


@atomic_retry
def _redemption_cancel_locked(*, redemption: Redemption, user, reason: str) -> Redemption:
    if redemption.account_id:
        # Points go back to the account that holds them now (the survivor's after a merge).
        account = account_person_lock(LoyaltyAccount(pk=redemption.account_id), surviving=True)
    else:
        person_lock(Customer(pk=redemption.customer_id))
        account = None
    if redemption.coupon_code_id:
        coupon_code_qs_select_for_update().filter(pk=redemption.coupon_code_id).first()
    if redemption.offer_id:
        offer_qs_select_for_update().filter(pk=redemption.offer_id).first()
    redemption = Redemption.objects.select_related("offer").get(pk=redemption.pk)
    if redemption.status == Redemption.Status.CANCELLED:
        return redemption
    note = (reason or "").strip()[:200]
    if redemption.points and account is not None:
        ledger_append(
            account=account,
            kind=LedgerEntry.Kind.RESTORE,
            points=redemption.points,
            idempotency_key=f"cancel:redemption:{redemption.pk}",
            reason=f"Redemption {redemption.pk} cancelled" + (f": {note}" if note else ""),
            store=redemption.store,
            acting_user=user,
            redemption=redemption,
        )
    credited = sum(
        LedgerEntry.objects.filter(redemption=redemption, kind=LedgerEntry.Kind.EARN).values_list(
            "points", flat=True
        )
    )
    if credited and account is not None:
        taken = min(credited, account.points_balance)
        if taken > 0:
            ledger_append(
                account=account,
                kind=LedgerEntry.Kind.REVERSE,
                points=-taken,
                idempotency_key=f"cancel:redemption:{redemption.pk}",
                reason=f"Redemption {redemption.pk} cancelled: bonus taken back",
                store=redemption.store,
                acting_user=user,
                redemption=redemption,
            )
    if redemption.coupon_code_id:
        CouponCode.objects.filter(pk=redemption.coupon_code_id, uses__gt=0).update(uses=F("uses") - 1)
    if redemption.offer_id:
        Offer.objects.filter(pk=redemption.offer_id, redemptions_count__gt=0).update(
            redemptions_count=F("redemptions_count") - 1
        )
    Redemption.objects.filter(pk=redemption.pk).update(
        status=Redemption.Status.CANCELLED, cancelled_at=timezone.now(), cancelled_by=user
    )
    redemption.refresh_from_db()
    return redemption


def coupon_codes_generate(
    *,
    offer: Offer,
    count: int,
    max_uses: int | None = 1,
    issue_reference: str = "",
    accounts: list[LoyaltyAccount] | None = None,
    prefix: str = "",
) -> list[CouponCode]:
    """Bulk-create unique random codes for ``offer`` (one per account when ``accounts`` is given).

    Codes come from ``secrets`` over an alphabet without 0/O/1/I/L; a rare collision with an
    existing code is drawn again. Raises ``InvalidAmount`` for a bad count.
    """
    if accounts is not None:
        count = len(accounts)
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise InvalidAmount("Generate at least one code.")
    if count > MAX_CODES_PER_BATCH:
        raise InvalidAmount(f"Generate at most {MAX_CODES_PER_BATCH} codes at once.")
    if max_uses is not None and max_uses <= 0:
        raise InvalidAmount("A code is usable at least once.")
    prefix = coupon_code_normalize(prefix)[:8] if prefix else ""
    now = timezone.now()
    created: list[CouponCode] = []
    pending: list[LoyaltyAccount | None] = list(accounts) if accounts is not None else [None] * count
    with transaction.atomic():
        while pending:
            drawn: dict[str, LoyaltyAccount | None] = {}
            for account in pending:
                code = coupon_code_generate(prefix=prefix)
                while code in drawn:
                    code = coupon_code_generate(prefix=prefix)
                drawn[code] = account
            taken = set(CouponCode.objects.filter(code__in=list(drawn)).values_list("code", flat=True))
            rows = [
                CouponCode(
                    offer=offer,
                    code=code,
                    max_uses=max_uses,
                    account=account,
                    issued_at=now if account is not None else None,
                    issue_reference=issue_reference[:100],
                )
                for code, account in drawn.items()
                if code not in taken
            ]
            created += CouponCode.objects.bulk_create(rows)
            pending = [account for code, account in drawn.items() if code in taken]
    return created


def coupon_code_create(*, offer: Offer, code: str, max_uses: int | None = None) -> CouponCode:
    """A shared code chosen by staff (e.g. SUMMER25); raises ``CouponError`` if it exists already."""
    normalized = coupon_code_normalize(code)
    try:
        with transaction.atomic():
            return CouponCode.objects.create(offer=offer, code=normalized, max_uses=max_uses)
    except IntegrityError as exc:
        raise CouponError(f"The code {normalized} already exists.") from exc
