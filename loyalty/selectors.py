"""Reads of loyalty data; nothing here writes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.exceptions import InvalidContact
from customers.models import Purchase
from customers.normalization import normalize_email, normalize_phone
from customers.selectors import TimelineEntry, customer_find_by_contact, customer_profile_ids
from loyalty.cards import CARD_LENGTH, card_number_normalize
from loyalty.exceptions import InvalidCardNumber, LoyaltyError
from loyalty.lock_objects import account_surviving
from loyalty.models import LedgerEntry, LoyaltyAccount, Offer, Programme, Redemption


def programme_current() -> Programme | None:
    """The programme the till works with: the first active one by name."""
    return Programme.objects.filter(is_active=True).order_by("name").first()


def account_for_profile(*, customer, programme: Programme | int) -> LoyaltyAccount | None:
    """The account of the surviving profile, or else of a profile merged into it (best balance first)."""
    while customer.merged_into_id:
        customer = customer.merged_into
    accounts = LoyaltyAccount.objects.filter(programme=programme).select_related("customer", "tier", "programme")
    own = accounts.filter(customer=customer).first()
    if own is not None:
        return own
    merged = accounts.filter(customer_id__in=customer_profile_ids(customer), merged_into__isnull=True)
    return merged.order_by("-points_balance", "pk").first()


def account_find(*, query: str, programme: Programme, region: str | None = None) -> LoyaltyAccount | None:
    """The account for a card number, phone number or email typed at the till, or ``None``.

    Sixteen digits are a card number (a wrong check digit raises
    ``InvalidCardNumber``); anything with an ``@`` is an email; the rest is tried as a phone, a
    local number being read in ``region`` (the till's store's country).
    Raises ``LoyaltyError`` with a clear message for input that is none of these.
    """
    text = (query or "").strip()
    if not text:
        raise LoyaltyError("Enter a card number, phone number or email.")
    if len(text) > 320 or "\x00" in text:
        raise LoyaltyError("That is not a card number, phone number or email.")
    accounts = LoyaltyAccount.objects.filter(programme=programme).select_related("customer", "tier", "programme")
    compact = "".join(ch for ch in text if ch not in " -")
    if compact.isdigit() and len(compact) == CARD_LENGTH and not text.startswith("+"):
        found = accounts.filter(card_number=card_number_normalize(compact)).first()
        return _surviving_account(found) if found is not None else None
    try:
        if "@" in text:
            customer = customer_find_by_contact(email=normalize_email(text))
        else:
            customer = customer_find_by_contact(phone=normalize_phone(text, region=region))
    except InvalidContact as exc:
        raise LoyaltyError(str(exc)) from exc
    if customer is None:
        return None
    return account_for_profile(customer=customer, programme=programme)


def _surviving_account(account: LoyaltyAccount) -> LoyaltyAccount:
    """A card of a merged profile opens the account its points moved to."""
    if account.merged_into_id is None:
        return account
    survivor = account_surviving(account)
    return LoyaltyAccount.objects.select_related("customer", "tier", "programme").get(pk=survivor.pk)


def account_by_card(*, card_number: str) -> LoyaltyAccount:
    """The account holding a card number (for a merged profile's card: the account it was merged
    into); raises ``InvalidCardNumber`` or ``LoyaltyError``."""
    number = card_number_normalize(card_number)
    account = LoyaltyAccount.objects.filter(card_number=number).select_related("customer", "tier", "programme").first()
    if account is None:
        raise InvalidCardNumber("No account has this card number.")
    return _surviving_account(account)


def purchase_for_receipt(*, store, receipt: str) -> Purchase:
    """The purchase with this receipt number at ``store`` (recorded at its till or by an import).

    Receipt numbers are only unique within a store, so another store's receipt is never found.
    Raises ``LoyaltyError`` for an empty or unknown receipt.
    """
    receipt = (receipt or "").strip()
    if not receipt or len(receipt) > 80 or "\x00" in receipt:
        raise LoyaltyError("Enter the receipt number.")
    till_ref = f"{store.code}:{receipt}"
    candidates = sorted(
        Purchase.objects.filter(store=store, external_ref__in=[till_ref, receipt]).select_related("customer", "store"),
        key=lambda p: (p.external_ref != till_ref, p.pk),
    )
    if not candidates:
        raise LoyaltyError(f"No purchase with receipt {receipt} at {store.name}.")
    return candidates[0]


@dataclasses.dataclass(frozen=True)
class RefundPreview:
    purchase: Purchase
    account: LoyaltyAccount | None
    earned: int
    #: the REVERSE entry when the purchase was refunded already
    refunded: LedgerEntry | None
    #: what a refund would take back now (the balance may no longer cover everything earned)
    to_take: int

    @property
    def refunded_points(self) -> int:
        return -self.refunded.points if self.refunded is not None else 0

    @property
    def unrecoverable(self) -> int:
        """Earned points already spent, which a refund now cannot take back."""
        return max(self.earned - self.to_take, 0) if self.refunded is None else 0


def purchase_refund_preview(*, purchase: Purchase, programme: Programme) -> RefundPreview:
    """What refunding ``purchase`` would take back from which account, for a confirmation step."""
    entries = LedgerEntry.objects.filter(purchase=purchase, account__programme=programme)
    earned = entries.filter(kind=LedgerEntry.Kind.EARN).points_sum()
    refunded = entries.filter(kind=LedgerEntry.Kind.REVERSE, idempotency_key=f"refund:purchase:{purchase.pk}").first()
    first = entries.filter(kind=LedgerEntry.Kind.EARN).select_related("account").first()
    account = _surviving_account(first.account) if first is not None else None
    to_take = 0 if refunded or account is None else max(min(earned, account.points_balance), 0)
    return RefundPreview(purchase=purchase, account=account, earned=earned, refunded=refunded, to_take=to_take)


def ledger_for(account: LoyaltyAccount, *, limit: int = 20) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(account=account).order_by("-occurred_at", "-id")[:limit]


def ledger_balance(account: LoyaltyAccount) -> int:
    """The balance recomputed from the ledger (the cached ``points_balance`` must equal it)."""
    return LedgerEntry.objects.filter(account=account).points_sum()


def points_expiring_soon(*, account: LoyaltyAccount, now: datetime | None = None, days: int | None = None) -> int:
    """Points of one account that expire within ``days`` (the programme's expiring-soon period)."""
    from loyalty.services.accounts import points_expiring

    now = now or timezone.now()
    days = account.programme.expiring_soon_days if days is None else days
    return points_expiring(account=account, until=now + timedelta(days=days))


def accounts_with_points_expiring(
    *, programme: Programme, now: datetime | None = None, days: int | None = None
) -> QuerySet[LoyaltyAccount]:
    """Accounts with points expiring within ``days``, annotated ``points_expiring`` (one query).

    For reminders: FIFO consumption means the unspent part of credits expiring by the horizon is
    ``expiring credits + debits`` (debits are negative) when positive.
    """
    now = now or timezone.now()
    horizon = now + timedelta(days=programme.expiring_soon_days if days is None else days)
    return (
        LoyaltyAccount.objects.filter(programme=programme, points_balance__gt=0)
        .annotate(
            credits_expiring=Coalesce(
                Sum("ledger__points", filter=Q(ledger__points__gt=0, ledger__expires_at__lte=horizon)),
                Value(0),
                output_field=IntegerField(),
            ),
            debits=Coalesce(
                Sum("ledger__points", filter=Q(ledger__points__lt=0)), Value(0), output_field=IntegerField()
            ),
        )
        .annotate(points_expiring=Coalesce("credits_expiring", 0) + Coalesce("debits", 0))
        .filter(points_expiring__gt=0)
    )


def rewards_available(*, programme: Programme, now: datetime | None = None) -> QuerySet[Offer]:
    """Offers the till can sell for points now."""
    now = now or timezone.now()
    return Offer.objects.filter(
        programme=programme, is_active=True, points_cost__gt=0, valid_from__lte=now, valid_until__gt=now
    ).order_by("points_cost", "name")


def timeline_entries_for(profile_ids: Iterable[int]) -> list[TimelineEntry]:
    """Ledger entries and redemptions of these customer profiles, for the customer 360° timeline."""
    ids = list(profile_ids)
    entries = [
        TimelineEntry(
            at=entry.occurred_at,
            kind="loyalty",
            title=f"{entry.get_kind_display()} {entry.points:+d} points",
            details={
                "Card": entry.account.card_number,
                "Reason": entry.reason,
                "Store": str(entry.store) if entry.store_id else "",
                "By": str(entry.acting_user) if entry.acting_user_id else "",
                "Balance after": entry.balance_after,
            },
        )
        for entry in LedgerEntry.objects.filter(account__customer_id__in=ids).select_related(
            "account", "store", "acting_user"
        )
    ]
    entries += [
        TimelineEntry(
            at=redemption.created_at,
            kind="redemption",
            title=f"Redeemed {redemption.description or redemption.get_kind_display()}",
            details={
                "Code": redemption.coupon_code.code if redemption.coupon_code_id else "",
                "Offer": redemption.offer.name if redemption.offer_id else "",
                "Where": str(redemption.store) if redemption.store_id else "Online",
                "Clerk": str(redemption.clerk) if redemption.clerk_id else "",
                "Order": redemption.order_reference,
                "Discount": str(redemption.discount_amount),
                "Status": redemption.get_status_display(),
            },
        )
        for redemption in Redemption.objects.filter(customer_id__in=ids).select_related(
            "coupon_code", "offer", "store", "clerk"
        )
    ]
    return sorted(entries, key=lambda e: e.at, reverse=True)
