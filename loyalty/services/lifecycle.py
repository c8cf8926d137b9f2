"""What happens to loyalty accounts when their profiles merge or the person is erased.

Both run inside the customers service's transaction (registered as profile hooks in
``LoyaltyConfig.ready``), after the customer rows were locked: customer -> loyalty account, as in
``loyalty.lock_objects``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from customers.exceptions import MergeError
from customers.models import Customer
from customers.selectors import customer_profile_ids
from loyalty.cards import card_number_generate
from loyalty.lock_objects import loyalty_account_qs_select_for_update
from loyalty.models import CouponCode, LedgerEntry, LoyaltyAccount, TierChange
from loyalty.services.accounts import ledger_append, points_expire_account
from loyalty.services.tiers import tier_upgrade_if_qualified

#: ledger kinds whose reason a person typed (adjustments, cancellation notes, refund notes)
FREE_TEXT_KINDS = (LedgerEntry.Kind.ADJUST, LedgerEntry.Kind.RESTORE, LedgerEntry.Kind.REVERSE)
ERASED_REASON = "Reason removed when the profile was erased"


@dataclasses.dataclass(frozen=True)
class _Lot:
    points: int
    expires_at: datetime | None
    source_entry_id: int


def unspent_lots(account: LoyaltyAccount) -> list[_Lot]:
    """The credits of ``account`` still unspent, oldest expiry first, with their expiry dates.

    Debits (redemptions, expiry, reversals, moves) consume credits in the order they expire, which is
    the rule ``points_expiring`` applies, so the lots add up to the balance and expire when the points
    would have expired on this account. Consecutive lots with the same expiry are combined.
    """
    entries = LedgerEntry.objects.filter(account=account).values_list("id", "points", "expires_at")
    debited = -sum(points for _id, points, _exp in entries if points < 0)
    credits = sorted(
        ((pk, points, exp) for pk, points, exp in entries if points > 0),
        key=lambda row: (row[2] is None, row[2] or timezone.now(), row[0]),
    )
    lots: list[_Lot] = []
    for pk, points, expires_at in credits:
        used = min(points, debited)
        debited -= used
        left = points - used
        if left <= 0:
            continue
        if lots and lots[-1].expires_at == expires_at:
            lots[-1] = dataclasses.replace(lots[-1], points=lots[-1].points + left)
        else:
            lots.append(_Lot(points=left, expires_at=expires_at, source_entry_id=pk))
    return lots


def _account_merge_into(*, source: LoyaltyAccount, target: LoyaltyAccount, user, now: datetime) -> None:
    """Move ``source``'s points, codes and better tier to ``target`` and close ``source`` (both locked)."""
    # Points already due expire where they were earned, so only live points move.
    source.points_balance -= points_expire_account(account=source, now=now)
    lots = unspent_lots(source)
    moved = sum(lot.points for lot in lots)
    if moved != source.points_balance:
        # The cached balance and the ledger disagree; moving either number would hide it.
        raise ValueError(f"Account {source.pk}: balance {source.points_balance} but ledger holds {moved}.")
    if moved:
        ledger_append(
            account=source,
            kind=LedgerEntry.Kind.MERGE,
            points=-moved,
            idempotency_key=f"merge:out:{source.pk}:{target.pk}",
            occurred_at=now,
            reason=f"Moved to card {target.card_number} (profiles merged)",
            acting_user=user,
        )
        for lot in lots:
            ledger_append(
                account=target,
                kind=LedgerEntry.Kind.MERGE,
                points=lot.points,
                idempotency_key=f"merge:in:{source.pk}:{lot.source_entry_id}",
                occurred_at=now,
                expires_at=lot.expires_at,
                reason=f"From card {source.card_number} (profiles merged)",
                acting_user=user,
            )
    CouponCode.objects.filter(account=source).update(account=target)
    LoyaltyAccount.objects.filter(merged_into=source).update(merged_into=target)
    LoyaltyAccount.objects.filter(pk=source.pk).update(
        status=LoyaltyAccount.Status.CLOSED, closed_at=now, merged_into=target
    )
    source.status, source.closed_at, source.merged_into = LoyaltyAccount.Status.CLOSED, now, target

    target_rank = target.tier.rank if target.tier_id else -1
    if source.tier_id and source.tier.rank > target_rank:
        TierChange.objects.create(
            account=target, from_tier=target.tier, to_tier=source.tier, reason=TierChange.Reason.MERGE, occurred_at=now
        )
        LoyaltyAccount.objects.filter(pk=target.pk).update(
            tier=source.tier, tier_since=now, tier_grace_until=source.tier_grace_until
        )
        target.tier, target.tier_since, target.tier_grace_until = source.tier, now, source.tier_grace_until
    # What both earned together may reach a better tier than either had.
    tier_upgrade_if_qualified(account=target, now=now)


def accounts_merge(*, survivor: Customer, other: Customer, user) -> list[LoyaltyAccount]:
    """Combine ``other``'s loyalty accounts into ``survivor``'s, per programme; returns the survivor's
    accounts that changed.

    Only ``other`` has an account: it moves to the survivor as it is (card, ledger, tier). Both have
    one: points already due expire where they are, then the other account's balance moves through the
    ledger (one MERGE debit there, MERGE credits here), its unique codes follow, the better tier is
    kept (a MERGE tier change), and the other account is closed with ``merged_into`` pointing here;
    tier qualification then counts both accounts' earnings.

    The MERGE credits keep the expiry dates of the unspent points they carry (one credit per expiry
    date), so expiry stays first-in-first-out by expiry date. They are dated at the merge, which keeps
    the ledger's running balance in order. Because expiry nets all debits against the oldest credits,
    moved points can expire later than they would have on their own card, never earlier.

    A closed account of ``other`` stays as it is; a closed account of the survivor facing an open one
    raises ``MergeError`` (the whole merge then changes nothing). Locks the accounts in primary-key
    order; the caller holds the customer locks. Safe to repeat: a merged account is closed and skipped,
    and every ledger key is derived from the two accounts.
    """
    now = timezone.now()
    with transaction.atomic():
        ids = list(LoyaltyAccount.objects.filter(Q(customer=other) | Q(customer=survivor)).values_list("pk", flat=True))
        if not ids:
            return []
        accounts = list(loyalty_account_qs_select_for_update().select_related("programme", "tier").filter(pk__in=ids))
        mine = {a.programme_id: a for a in accounts if a.customer_id == survivor.pk}
        changed = []
        for theirs in (a for a in accounts if a.customer_id == other.pk):
            target = mine.get(theirs.programme_id)
            if target is None:
                LoyaltyAccount.objects.filter(pk=theirs.pk).update(customer=survivor)
                theirs.customer = survivor
                changed.append(theirs)
            elif theirs.status == LoyaltyAccount.Status.CLOSED:
                continue  # merged already, or closed by staff: it stays closed as it is
            elif target.status == LoyaltyAccount.Status.CLOSED:
                raise MergeError(
                    f"The surviving profile's {target.programme.name} card is closed; reopen it or keep the "
                    "other profile as the survivor."
                )
            else:
                _account_merge_into(source=theirs, target=target, user=user, now=now)
                changed.append(target)
        return changed


def accounts_erase(*, customer: Customer, user) -> list[LoyaltyAccount]:
    """Close the loyalty accounts of an erased person (and of profiles merged into them).

    The remaining balance is forfeited with a FORFEIT entry, so the ledger still adds up and the
    amounts stay for accounting; the card number is replaced by a fresh random one so the old card
    finds nothing; reasons staff typed on the ledger (adjustments, cancellation and refund notes) are
    blanked; unused codes handed to the person are voided. Locks the accounts in primary-key order.
    Idempotent.
    """
    now = timezone.now()
    with transaction.atomic():
        accounts = list(
            loyalty_account_qs_select_for_update()
            .select_related("programme")
            .filter(customer_id__in=customer_profile_ids(customer))
        )
        for account in accounts:
            if account.points_balance > 0:
                ledger_append(
                    account=account,
                    kind=LedgerEntry.Kind.FORFEIT,
                    points=-account.points_balance,
                    idempotency_key=f"erase:{account.pk}",
                    occurred_at=now,
                    reason="Forfeited: the profile was erased",
                    acting_user=user,
                )
            # The one exception to the append-only ledger: erasure blanks typed text, never amounts.
            LedgerEntry.objects.filter(account=account, kind__in=FREE_TEXT_KINDS).exclude(reason="").update(
                reason=ERASED_REASON
            )
            CouponCode.objects.filter(account=account, is_void=False).update(is_void=True)
            card_number = card_number_generate()
            while LoyaltyAccount.objects.filter(card_number=card_number).exists():
                card_number = card_number_generate()
            LoyaltyAccount.objects.filter(pk=account.pk).update(
                status=LoyaltyAccount.Status.CLOSED,
                closed_at=account.closed_at or now,
                card_number=card_number,
                tier_grace_until=None,
            )
        return accounts
