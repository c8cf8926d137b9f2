"""Accounts and the ledger core: enrolment, appending entries, adjustments, expiry."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Customer, Store
from customers.transactions import atomic_retry
from loyalty.cards import card_number_generate
from loyalty.exceptions import IdempotencyConflict, InsufficientPoints, InvalidAmount, LoyaltyError, NotEnrolled
from loyalty.lock_objects import (
    account_person_lock,
    customer_qs_select_for_update,
    customers_lock,
    loyalty_account_lock,
    loyalty_account_qs_select_for_update,
)
from loyalty.models import LedgerEntry, LoyaltyAccount, Programme, TierChange
from loyalty.services.tiers import tier_for_value

MAX_POINTS_PER_ENTRY = 10_000_000
MAX_REASON_LENGTH = 300
MAX_KEY_LENGTH = 120


def clean_points(value, *, label: str = "points") -> int:
    """A positive whole number of points below an absurd ceiling, or ``InvalidAmount``."""
    if isinstance(value, bool):
        raise InvalidAmount(f"Give the {label} as a whole number.")
    try:
        points = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise InvalidAmount(f"Give the {label} as a whole number.") from exc
    if points <= 0:
        raise InvalidAmount(f"The {label} must be more than zero.")
    if points > MAX_POINTS_PER_ENTRY:
        raise InvalidAmount(f"{points} {label} is implausibly large.")
    return points


def account_enrol(
    *, customer: Customer, programme: Programme, store: Store | None = None, clerk=None
) -> tuple[LoyaltyAccount, bool]:
    """Open the customer's account in ``programme``, or return the one they have; (account, created).

    Idempotent (unique per customer and programme; a concurrent enrolment returns the winner's
    account). The account gets a fresh random card number and the programme's entry tier. Locks the
    person first, so an enrolment racing a merge of the profile either happens before it (and the
    account moves with the merge) or is refused. Raises ``LoyaltyError`` for an inactive programme or
    a merged/erased profile.
    """
    if not customer.is_active_profile:
        raise LoyaltyError("This profile was merged or erased; enrol the surviving profile.")
    existing = LoyaltyAccount.objects.filter(customer=customer, programme=programme).first()
    if existing is not None:
        return existing, False
    if not programme.is_active:
        raise LoyaltyError(f"{programme.name} is not open for enrolment.")
    return _account_enrol_locked(customer=customer, programme=programme, store=store, clerk=clerk)


@atomic_retry
def _account_enrol_locked(*, customer, programme, store, clerk) -> tuple[LoyaltyAccount, bool]:
    locked = customers_lock([customer.pk])[customer.pk]
    if not locked.is_active_profile:
        raise LoyaltyError("This profile was merged or erased; enrol the surviving profile.")
    existing = LoyaltyAccount.objects.filter(customer=customer, programme=programme).first()
    if existing is not None:
        return existing, False
    entry_tier = tier_for_value(programme=programme, value=0)
    now = timezone.now()
    for _attempt in range(5):
        try:
            with transaction.atomic():
                account = LoyaltyAccount.objects.create(
                    customer=customer,
                    programme=programme,
                    card_number=card_number_generate(),
                    tier=entry_tier,
                    tier_since=now if entry_tier else None,
                    enrolled_store=store,
                    enrolled_by=clerk,
                )
                if entry_tier is not None:
                    TierChange.objects.create(
                        account=account, to_tier=entry_tier, reason=TierChange.Reason.ENROL, occurred_at=now
                    )
                return account, True
        except IntegrityError:
            existing = LoyaltyAccount.objects.filter(customer=customer, programme=programme).first()
            if existing is not None:
                return existing, False
            # else: a card number collision (one in ~1e14); draw again
    raise LoyaltyError("Could not allocate a card number; try again.")


def account_for_customer(*, customer: Customer, programme: Programme) -> LoyaltyAccount:
    account = LoyaltyAccount.objects.filter(customer=customer, programme=programme).first()
    if account is None:
        raise NotEnrolled(f"This customer is not enrolled in {programme.name}.")
    return account


def account_lock(account: LoyaltyAccount) -> LoyaltyAccount:
    """Re-read ``account`` under a row lock (caller is inside ``transaction.atomic``)."""
    return loyalty_account_lock(account)


def ledger_append(
    *,
    account: LoyaltyAccount,
    kind: str,
    points: int,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    reason: str = "",
    store: Store | None = None,
    acting_user=None,
    purchase=None,
    redemption=None,
    bonus_window=None,
    expires_at: datetime | None = None,
) -> tuple[LedgerEntry, bool]:
    """Append one entry and move the cached balance with ``F()``; (entry, created).

    The caller holds the account's row lock (``account_lock``) inside a transaction, which is what
    makes the key check, the balance check and the insert one step. A key already used on the
    account returns the first entry unchanged (no-op) or raises ``IdempotencyConflict`` when it
    recorded other points. Raises ``InsufficientPoints`` rather than going below zero and
    ``NotEnrolled`` for a closed account. Credits of a programme with expiry get their expiry date
    (``expires_at`` keeps the date of points moved in from another account).
    """
    from django.db.models import F

    if not idempotency_key or len(idempotency_key) > MAX_KEY_LENGTH:
        raise LoyaltyError("Every ledger entry needs an idempotency key of at most 120 characters.")
    if points == 0:
        raise InvalidAmount("A ledger entry moves at least one point.")
    existing = LedgerEntry.objects.filter(account=account, idempotency_key=idempotency_key).first()
    if existing is None and account.status == LoyaltyAccount.Status.CLOSED:
        # A merged or erased account took its last entry when it closed; points never land there again.
        raise NotEnrolled("This account is closed.")
    if existing is not None:
        if existing.points != points or existing.kind != kind:
            raise IdempotencyConflict("This request was already recorded with other points.")
        return existing, False
    new_balance = account.points_balance + points
    if new_balance < 0:
        raise InsufficientPoints(f"Only {account.points_balance} points available.")
    occurred_at = occurred_at or timezone.now()
    if points < 0:
        expires_at = None
    elif expires_at is None and account.programme.points_expire_after_days:
        expires_at = occurred_at + timedelta(days=account.programme.points_expire_after_days)
    entry = LedgerEntry.objects.create(
        account=account,
        kind=kind,
        points=points,
        balance_after=new_balance,
        occurred_at=occurred_at,
        expires_at=expires_at,
        reason=reason[:MAX_REASON_LENGTH],
        store=store,
        acting_user=acting_user,
        purchase=purchase,
        redemption=redemption,
        bonus_window=bonus_window,
        idempotency_key=idempotency_key,
    )
    LoyaltyAccount.objects.filter(pk=account.pk).update(points_balance=F("points_balance") + points)
    account.points_balance = new_balance
    return entry, True


def points_credit_many(
    *, credits: list[tuple[int, str]], points: int, kind: str, reason: str, occurred_at: datetime
) -> set[str]:
    """Credit ``points`` to the active account of each customer of ``credits`` (pairs of customer id and
    idempotency key), set-based: a fixed number of statements whatever the number of customers.

    For an automation's batch (a journey's bonus step), inside the caller's transaction. Locks the
    customers, then their accounts, each in primary-key order (``loyalty.lock_objects``). A key already
    on the account credits nothing again; a customer without an active account in an active programme
    gets nothing. Entries carry their programme's expiry like ``ledger_append``'s. Returns the keys
    credited, now or before. Raises ``InvalidAmount`` (nothing written) unless ``points`` is a positive
    whole number no larger than one entry may move.
    """
    from django.db.models import F

    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidAmount("Credit a positive whole number of points.")
    clean_points(points)
    if not credits:
        return set()
    customer_ids = sorted({customer_id for customer_id, _ in credits})
    list(customer_qs_select_for_update().filter(pk__in=customer_ids).values_list("pk", flat=True))
    accounts: dict[int, tuple[int, int, int | None]] = {}  # customer: (account, balance, days to expiry)
    for account_id, customer_id, balance, expiry_days in (
        loyalty_account_qs_select_for_update()
        .filter(customer_id__in=customer_ids, status=LoyaltyAccount.Status.ACTIVE, programme__is_active=True)
        .values_list("pk", "customer_id", "points_balance", "programme__points_expire_after_days")
    ):
        accounts.setdefault(customer_id, (account_id, balance, expiry_days))  # the first, by pk
    wanted = [(accounts[customer_id], key) for customer_id, key in credits if customer_id in accounts]
    recorded = set(
        LedgerEntry.objects.filter(
            account_id__in={account_id for (account_id, _, _), _ in wanted},
            idempotency_key__in={key for _, key in wanted},
        ).values_list("account_id", "idempotency_key")
    )
    credited = {key for (account_id, _, _), key in wanted if (account_id, key) in recorded}
    balances = {account_id: balance for account_id, balance, _ in accounts.values()}
    added: Counter = Counter()
    entries = []
    for (account_id, _, expiry_days), key in wanted:
        if key in credited:
            continue
        credited.add(key)
        added[account_id] += points
        entries.append(
            LedgerEntry(
                account_id=account_id,
                kind=kind,
                points=points,
                balance_after=balances[account_id] + added[account_id],
                occurred_at=occurred_at,
                expires_at=occurred_at + timedelta(days=expiry_days) if expiry_days else None,
                reason=reason[:MAX_REASON_LENGTH],
                idempotency_key=key,
            )
        )
    LedgerEntry.objects.bulk_create(entries)
    by_amount: dict[int, list[int]] = {}
    for account_id, amount in added.items():
        by_amount.setdefault(amount, []).append(account_id)
    for amount, account_ids in by_amount.items():  # one amount, one UPDATE: almost always exactly one
        LoyaltyAccount.objects.filter(pk__in=account_ids).update(points_balance=F("points_balance") + amount)
    return credited


@atomic_retry
def points_adjust(
    *, account: LoyaltyAccount, points: int, reason: str, user, idempotency_key: str
) -> tuple[LedgerEntry, bool]:
    """A manual correction by staff: one ADJUST entry with its reason; (entry, created).

    Locks the person, then the account; a lock conflict is retried. Idempotent on ``idempotency_key``.
    Raises ``InvalidAmount`` for zero or absurd points, ``LoyaltyError`` without a reason,
    ``InsufficientPoints`` when it would go below zero.
    """
    reason = (reason or "").strip()
    if not reason:
        raise LoyaltyError("An adjustment needs a reason.")
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidAmount("Give the points as a whole number.")
    clean_points(abs(points) or 0)
    locked = account_person_lock(account)
    entry, created = ledger_append(
        account=locked,
        kind=LedgerEntry.Kind.ADJUST,
        points=points,
        idempotency_key=idempotency_key,
        reason=reason,
        acting_user=user,
    )
    account.points_balance = locked.points_balance
    return entry, created


def points_expiring(*, account: LoyaltyAccount, until: datetime) -> int:
    """Points of ``account`` whose credits expire by ``until`` and are not yet spent or expired.

    Debits consume credits first-in-first-out, and credits expire in the order they were earned, so
    the unspent part of the credits expiring by ``until`` is ``max(0, expiring credits - debits)``.
    """
    totals = LedgerEntry.objects.filter(account=account).expiry_totals(until=until)
    return max(0, totals["expiring"] + totals["debited"])


def points_expire_account(*, account: LoyaltyAccount, now: datetime | None = None) -> int:
    """Expire what is due on one account; returns the points expired (0 when nothing is due).

    Locks the person, then the account; a lock conflict is retried. Safe to repeat: a second run finds
    nothing due.
    """
    return _points_expire_account_locked(account=account, now=now or timezone.now())


@atomic_retry
def _points_expire_account_locked(*, account: LoyaltyAccount, now: datetime) -> int:
    locked = account_person_lock(account)
    due = points_expiring(account=locked, until=now)
    if due > 0:
        last = (
            LedgerEntry.objects.filter(account=locked, points__gt=0, expires_at__lte=now)
            .order_by("-expires_at", "-id")
            .values_list("id", flat=True)
            .first()
        )
        ledger_append(
            account=locked,
            kind=LedgerEntry.Kind.EXPIRE,
            points=-due,
            idempotency_key=f"expire:through-credit:{last}",
            occurred_at=now,
            reason="Points expired (first in, first out)",
        )
    LoyaltyAccount.objects.filter(pk=locked.pk).update(expired_through=now)
    return due


def points_expire_due(*, now: datetime | None = None, limit: int = 1000) -> tuple[int, int]:
    """Periodic job: expire due points on up to ``limit`` accounts; returns (accounts checked, points expired).

    Candidates are accounts holding credits that expired since their last check; each account is
    handled in its own short transaction.
    """
    from django.db.models import Exists, F, OuterRef, Q

    now = now or timezone.now()
    newly_expired = LedgerEntry.objects.filter(account=OuterRef("pk"), points__gt=0, expires_at__lte=now).filter(
        Q(account__expired_through__isnull=True) | Q(expires_at__gt=F("account__expired_through"))
    )
    candidates = (
        LoyaltyAccount.objects.filter(Exists(newly_expired)).order_by("pk").values_list("pk", flat=True)[:limit]
    )
    ids = list(candidates)
    expired = 0
    for account in LoyaltyAccount.objects.filter(pk__in=ids).order_by("pk"):
        expired += points_expire_account(account=account, now=now)
    return len(ids), expired
