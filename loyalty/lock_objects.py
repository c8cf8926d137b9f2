"""Row locks, always taken in this order within one transaction, each set ordered by pk:

customer -> loyalty account -> coupon code -> offer -> bonus windows.

``of=("self",)`` keeps Postgres from also locking rows of joined tables.
"""

from __future__ import annotations

from customers.models import Customer
from loyalty.models import BonusWindow, CouponCode, LoyaltyAccount, Offer


def customer_qs_select_for_update():
    return Customer.objects.select_for_update(of=("self",)).order_by("pk")


def loyalty_account_qs_select_for_update():
    return LoyaltyAccount.objects.select_for_update(of=("self",)).order_by("pk")


def loyalty_account_lock(account: LoyaltyAccount) -> LoyaltyAccount:
    """Re-read ``account`` under its row lock, with programme and tier (caller is inside ``transaction.atomic``)."""
    return loyalty_account_qs_select_for_update().select_related("programme", "tier").get(pk=account.pk)


def coupon_code_qs_select_for_update():
    return CouponCode.objects.select_for_update(of=("self",)).order_by("pk")


def offer_qs_select_for_update():
    return Offer.objects.select_for_update(of=("self",)).order_by("pk")


def bonus_window_qs_select_for_update():
    return BonusWindow.objects.select_for_update(of=("self",)).order_by("pk")
