"""Row locks for everything that touches a person; one order for the whole project.

Within one transaction, locks are always taken in this order, each set ordered by primary key:

1. customer rows: the profile and every profile of its merge chain (``customers_lock``, ``person_lock``);
2. consent state rows of those customers (``consent_state_qs_select_for_update``);
3. loyalty accounts (``loyalty.lock_objects``);
4. coupon codes, then offers, then bonus windows (``loyalty.lock_objects``).

Every service that writes a row of a person (a purchase, a ledger entry, a redemption, a consent
record, a merge) takes the person's customer lock first, even when it only needs the account. The
reason is PostgreSQL's deferred foreign keys: a transaction that inserted a row pointing at a
customer takes ``FOR KEY SHARE`` on that customer at ``COMMIT``, after every other lock it holds. A
purchase that locked only the account would then wait for the customer at commit while a merge,
holding the customer, waited for the account: a deadlock. Taking the customer first makes the commit
step wait for nothing.

Customers are locked ``FOR NO KEY UPDATE`` (``no_key=True``): it excludes every other person lock, but
not the key-share locks of foreign-key checks from transactions that hold no other person lock.
A deadlock or serialization failure that still happens (an order this module cannot see, such as a
profile merged while we waited for it) is retried by ``customers.transactions.atomic_retry``.
"""

from __future__ import annotations

from collections.abc import Iterable

from customers.models import ConsentState, Customer

#: how many merges deep a chain is followed (a chain is normally one or two profiles long)
MAX_CHAIN = 20


def customer_qs_select_for_update():
    return Customer.objects.select_for_update(no_key=True, of=("self",)).order_by("pk")


def consent_state_qs_select_for_update():
    return ConsentState.objects.select_for_update(of=("self",)).order_by("customer_id", "channel")


def customers_lock(customer_ids: Iterable[int]) -> dict[int, Customer]:
    """Lock the given customers (primary-key order) and return them, re-read, by pk.

    The caller is inside ``transaction.atomic``. Profiles merged since the caller read them are not
    followed; use ``person_lock`` for that.
    """
    ids = sorted({pk for pk in customer_ids if pk is not None})
    if not ids:
        return {}
    return {c.pk: c for c in customer_qs_select_for_update().select_related("home_store").filter(pk__in=ids)}


def person_lock(*customers: Customer | None) -> list[Customer]:
    """Lock each given profile and its merge chain up to the surviving profile; returns the survivors
    (re-read under the lock), one per argument, in argument order (``None`` stays ``None``).

    Each profile is locked together with the profile it was merged into as the caller read it, in
    primary-key order, in one query. When the locked rows show a longer chain (a merge committed while
    we waited, or a chain of merges), the further profiles are locked next: those are merged-away
    profiles no other service locks before their survivor, so this cannot form a cycle with the pk
    order; should it ever, the deadlock is retried by ``atomic_retry``.
    """
    wanted: set[int] = set()
    for customer in customers:
        if customer is not None:
            wanted |= {customer.pk, customer.merged_into_id}
    locked = customers_lock(wanted)
    for _round in range(MAX_CHAIN):
        missing = {c.merged_into_id for c in locked.values() if c.merged_into_id and c.merged_into_id not in locked}
        if not missing:
            break
        locked.update(customers_lock(missing))
    survivors = []
    for customer in customers:
        if customer is None:
            survivors.append(None)
            continue
        current = locked[customer.pk]
        seen = {current.pk}
        while current.merged_into_id is not None and current.merged_into_id in locked:
            current = locked[current.merged_into_id]
            if current.pk in seen:
                break
            seen.add(current.pk)
        survivors.append(current)
    return survivors

