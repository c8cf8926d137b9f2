"""Loyalty and offer values for placeholders, read for one customer (previews, tests)."""

from __future__ import annotations

SAMPLE_UNIQUE_CODE = "SAMPLECODE"


def loyalty_values(customer, *, programme_id: int | None = None) -> dict[str, str]:
    """``points_balance`` and ``tier`` from the customer's active account (the offer's programme first)."""
    from loyalty.models import LoyaltyAccount

    if customer is None or customer.pk is None:
        return {}
    accounts = LoyaltyAccount.objects.filter(customer=customer, status=LoyaltyAccount.Status.ACTIVE).select_related(
        "tier"
    )
    account = None
    if programme_id is not None:
        account = accounts.filter(programme_id=programme_id).first()
    account = account or accounts.order_by("enrolled_at", "pk").first()
    if account is None:
        return {}
    return {"points_balance": f"{account.points_balance:,}", "tier": account.tier.name if account.tier else ""}


def coupon_value(campaign) -> str:
    """The code a preview shows: the shared code, or a sample standing in for a unique one."""
    if campaign is None or campaign.offer_id is None:
        return ""
    if campaign.coupon_mode == campaign.CouponMode.SHARED and campaign.shared_code_id:
        return campaign.shared_code.code
    return SAMPLE_UNIQUE_CODE


def unique_codes_available(offer) -> int:
    """Codes of ``offer`` not yet issued to anyone, not void, not used up: what unique mode draws from."""
    from django.db.models import F, Q

    from loyalty.models import CouponCode

    return (
        CouponCode.objects.filter(offer=offer, account__isnull=True, issued_at__isnull=True, is_void=False)
        .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
        .count()
    )
