"""Handing out an offer's unique codes in bulk: whoever sends them (a campaign, later a journey) names
the holders as rows of SQL, and loyalty marks the codes issued to them in one statement.

Loyalty never learns what a campaign is: the caller passes a row source of ``(code_id, customer_id)``
and a reference string; attribution joins the other way (redemption -> code <- the caller's row).
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import F, Q, QuerySet

from loyalty.models import CouponCode, LoyaltyAccount, Offer
from loyalty.services.redemptions import MAX_CODES_PER_BATCH, coupon_codes_generate

# The first key of the advisory lock (the offer id is the second); a constant, fixed across processes.
ALLOTMENT_LOCK_SPACE = 0x434F55  # "COU"


def coupon_codes_unissued(offer: Offer | int) -> QuerySet[CouponCode]:
    """Codes of ``offer`` nobody holds yet: not issued, no account, not void, not used up."""
    return CouponCode.objects.filter(
        offer=offer, account__isnull=True, issued_at__isnull=True, is_void=False
    ).filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))


def offer_codes_allotment_lock(offer: Offer) -> None:
    """Serialise bulk allotments of ``offer``'s codes until the transaction ends (two launches drawing
    from the same offer at once would otherwise pick the same free codes).

    A PostgreSQL advisory lock, not a row lock: it stays out of the person -> account -> code -> offer
    order the till follows. SQLite already runs one writing transaction at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ALLOTMENT_LOCK_SPACE, offer.pk])


def coupon_codes_top_up(*, offer: Offer, needed: int, reference: str) -> int:
    """Generate single-use codes so that ``offer`` has at least ``needed`` unissued ones; returns how many
    were made. Call inside the transaction that allots them (after ``offer_codes_allotment_lock``).
    A few statements per 100,000 codes.
    """
    missing = needed - coupon_codes_unissued(offer).count()
    made = 0
    while missing > 0:
        batch = min(missing, MAX_CODES_PER_BATCH)
        made += len(coupon_codes_generate(offer=offer, count=batch, max_uses=1, issue_reference=reference))
        missing -= batch
    return made


def coupon_codes_issue(*, offer: Offer, holders_sql: str, params: list, reference: str, now: datetime) -> int:
    """Mark the codes ``holders_sql`` hands out (rows ``code_id, customer_id``) issued to those customers.

    ONE UPDATE: each code gets ``issued_at``, the reference, and the customer's active account in the
    offer's programme when they have one (only that member may then redeem it; a non-member's code is
    theirs by the message that carried it). Codes already issued are left as they are, so repeating it
    changes nothing. Returns the number of codes issued now.
    """
    codes = connection.ops.quote_name(CouponCode._meta.db_table)
    accounts = connection.ops.quote_name(LoyaltyAccount._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    statement = (
        f"UPDATE {codes} SET issued_at = %s, issue_reference = %s, account_id = ("  # noqa: S608 (table names)
        f"SELECT MIN(account.id) FROM {accounts} account WHERE account.customer_id = holders.customer_id "
        "AND account.programme_id = %s AND account.status = %s) "
        f"FROM ({holders_sql}) holders WHERE {codes}.id = holders.code_id AND {codes}.offer_id = %s "
        f"AND {codes}.issued_at IS NULL AND {codes}.account_id IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            [
                adapt(now),
                reference[:100],
                offer.programme_id,
                LoyaltyAccount.Status.ACTIVE,
                *params,
                offer.pk,
            ],
        )
        return max(cursor.rowcount, 0)
