"""Loyalty's row locks, after the person's customer locks of ``customers.lock_objects``.

The one order, within a transaction, each set ordered by pk:

customer (the person, ``person_lock``) -> consent states -> loyalty account -> coupon code -> offer
-> bonus windows.

Every loyalty service that writes for a person calls ``person_lock`` before it locks an account (see
``customers.lock_objects`` for why the deferred foreign keys make that necessary), and runs under
``customers.transactions.atomic_retry``. ``of=("self",)`` keeps Postgres from also locking rows of
joined tables.
"""

from __future__ import annotations

from customers.lock_objects import customer_qs_select_for_update, customers_lock, person_lock
from customers.models import Customer
from loyalty.models import BonusWindow, CouponCode, LoyaltyAccount, Offer

__all__ = [
    "account_person_lock",
    "account_surviving",
    "bonus_window_qs_select_for_update",
    "coupon_code_qs_select_for_update",
    "customer_qs_select_for_update",
    "customers_lock",
    "loyalty_account_qs_select_for_update",
    "offer_qs_select_for_update",
    "person_lock",
]


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


def account_surviving(account: LoyaltyAccount) -> LoyaltyAccount:
    """The account that holds ``account``'s points now: itself, or the account it was merged into."""
    seen = set()
    while account.merged_into_id is not None and account.pk not in seen:
        seen.add(account.pk)
        account = account.merged_into
    return account


def account_person_lock(account: LoyaltyAccount, *, surviving: bool = False) -> LoyaltyAccount:
    """Lock the person holding ``account`` (their customer rows first), then the account; returns the
    account re-read under its lock. With ``surviving``, the account locked and returned is the one that
    holds the points now (itself, or the account it was merged into).

    An account moves only with a merge of its profile, to the profile it was merged into, so the merge
    chain that ``person_lock`` follows from the holder read earlier always reaches the owner now.
    """
    target_id, customer_id = account.pk, account.customer_id
    if surviving or customer_id is None:
        holder = LoyaltyAccount.objects.select_related("merged_into").get(pk=account.pk)
        customer_id = holder.customer_id
        target_id = account_surviving(holder).pk if surviving else holder.pk
    person_lock(Customer(pk=customer_id))
    return loyalty_account_qs_select_for_update().select_related("programme", "tier").get(pk=target_id)
