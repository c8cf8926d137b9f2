"""What loyalty adds to a customer's record in the admin: the 360° header panel, the refunds that
lifetime value subtracts, and the loyalty sections of the subject-access export. Registered with
customers' hooks from ``LoyaltyConfig.ready``, so customers never imports loyalty."""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse

from customers.header_sources import HeaderLine, HeaderPanel
from loyalty.models import AccountStatusChange, CouponCode, LedgerEntry, LoyaltyAccount, Redemption, TierChange

REFUND_KEY_PREFIX = "refund:purchase:"

#: the models holding a person's loyalty data, and the export section holding each
EXPORTED_MODELS = {
    "loyalty.LoyaltyAccount": "loyalty_accounts",
    "loyalty.Redemption": "loyalty_redemptions",
}


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def loyalty_header_panel(customer, profile_ids: list[int]) -> HeaderPanel:
    """Tier, points and card of the person's live account (their own, else one merged into it)."""
    accounts = (
        LoyaltyAccount.objects.filter(customer_id__in=profile_ids, merged_into__isnull=True)
        .select_related("tier", "programme", "enrolled_store")
        .order_by("-status", "-points_balance", "pk")
    )
    accounts = sorted(accounts, key=lambda a: (a.status != LoyaltyAccount.Status.ACTIVE, a.customer_id != customer.pk))
    if not accounts:
        return HeaderPanel(key="loyalty", title="Loyalty", lines=[], empty_text="Not a member.")
    lines = []
    for account in accounts[:2]:
        prefix = f"{account.programme.name}: " if len(accounts) > 1 else ""
        lines += [
            HeaderLine(
                label=f"{prefix}Tier",
                value=account.tier.name if account.tier_id else "No tier",
                note=f"since {account.tier_since:%Y-%m-%d}" if account.tier_id and account.tier_since else "",
            ),
            HeaderLine(
                label="Points",
                value=f"{account.points_balance:,}",
                note=(
                    f"card {account.card_number}"
                    + ("" if account.status == LoyaltyAccount.Status.ACTIVE else f" · {account.get_status_display()}")
                ),
                url=reverse("admin:loyalty_loyaltyaccount_change", args=[account.pk]),
            ),
        ]
    return HeaderPanel(key="loyalty", title="Loyalty", lines=lines)


def refunded_purchases(profile_ids: list[int]) -> dict[int, Decimal]:
    """Purchases of these profiles refunded through loyalty (a REVERSE entry), with the amount refunded.

    A refund is recorded per whole purchase, so the amount is the purchase's.
    """
    rows = (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.REVERSE,
            purchase__customer_id__in=profile_ids,
            idempotency_key__startswith=REFUND_KEY_PREFIX,
        )
        .values_list("purchase_id", "purchase__amount")
        .distinct()
    )
    return dict(rows)


def loyalty_export_sections(profile_ids: list[int]) -> dict:
    """Accounts (with their ledger, tier and status history, codes handed to them) and redemptions."""
    accounts = list(
        LoyaltyAccount.objects.filter(customer_id__in=profile_ids)
        .select_related("customer", "programme", "tier", "enrolled_store", "merged_into")
        .order_by("pk")
    )
    account_ids = [account.pk for account in accounts]
    ledger: dict[int, list] = {pk: [] for pk in account_ids}
    for entry in LedgerEntry.objects.filter(account_id__in=account_ids).select_related("store", "purchase"):
        ledger[entry.account_id].append(
            {
                "kind": entry.kind,
                "points": entry.points,
                "balance_after": entry.balance_after,
                "occurred_at": _iso(entry.occurred_at),
                "expires_at": _iso(entry.expires_at),
                "reason": entry.reason,
                "store": entry.store.code if entry.store_id else None,
                "purchase": entry.purchase.external_ref if entry.purchase_id else None,
            }
        )
    tiers: dict[int, list] = {pk: [] for pk in account_ids}
    for change in TierChange.objects.filter(account_id__in=account_ids).select_related("from_tier", "to_tier"):
        tiers[change.account_id].append(
            {
                "from": change.from_tier.name if change.from_tier_id else None,
                "to": change.to_tier.name if change.to_tier_id else None,
                "reason": change.reason,
                "occurred_at": _iso(change.occurred_at),
            }
        )
    statuses: dict[int, list] = {pk: [] for pk in account_ids}
    for change in AccountStatusChange.objects.filter(account_id__in=account_ids):
        statuses[change.account_id].append(
            {
                "from": change.from_status,
                "to": change.to_status,
                "reason": change.reason,
                "occurred_at": _iso(change.occurred_at),
            }
        )
    codes: dict[int, list] = {pk: [] for pk in account_ids}
    for code in CouponCode.objects.filter(account_id__in=account_ids).select_related("offer"):
        codes[code.account_id].append(
            {"code": code.code, "offer": code.offer.name, "issued_at": _iso(code.issued_at), "uses": code.uses}
        )
    return {
        "loyalty_accounts": [
            {
                "profile": str(account.customer.public_id),
                "programme": account.programme.name,
                "card_number": account.card_number,
                "status": account.status,
                "tier": account.tier.name if account.tier_id else None,
                "tier_since": _iso(account.tier_since),
                "points_balance": account.points_balance,
                "enrolled_at": _iso(account.enrolled_at),
                "enrolled_store": account.enrolled_store.code if account.enrolled_store_id else None,
                "closed_at": _iso(account.closed_at),
                "merged_into_card": account.merged_into.card_number if account.merged_into_id else None,
                "ledger": ledger[account.pk],
                "tier_changes": tiers[account.pk],
                "status_changes": statuses[account.pk],
                "coupon_codes": codes[account.pk],
            }
            for account in accounts
        ],
        "loyalty_redemptions": [
            {
                "kind": redemption.kind,
                "description": redemption.description,
                "offer": redemption.offer.name if redemption.offer_id else None,
                "code": redemption.coupon_code.code if redemption.coupon_code_id else None,
                "points": redemption.points,
                "channel": redemption.channel,
                "store": redemption.store.code if redemption.store_id else None,
                "order_reference": redemption.order_reference,
                "order_amount": str(redemption.order_amount) if redemption.order_amount is not None else None,
                "discount_amount": str(redemption.discount_amount),
                "status": redemption.status,
                "created_at": _iso(redemption.created_at),
                "cancelled_at": _iso(redemption.cancelled_at),
            }
            for redemption in Redemption.objects.filter(customer_id__in=profile_ids)
            .select_related("offer", "coupon_code", "store")
            .order_by("created_at", "id")
        ],
    }
