"""Staff changes of an account's status (suspend, reactivate, close), each recorded with its reason."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from loyalty.exceptions import LoyaltyError
from loyalty.lock_objects import loyalty_account_lock
from loyalty.models import AccountStatusChange, LoyaltyAccount

Status = LoyaltyAccount.Status
MAX_REASON_LENGTH = 300

# Closing is final: a closed account's card is never reopened (enrol again instead).
STATUS_MOVES: dict[str, frozenset[str]] = {
    Status.ACTIVE: frozenset({Status.SUSPENDED, Status.CLOSED}),
    Status.SUSPENDED: frozenset({Status.ACTIVE, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


def account_status_change(*, account: LoyaltyAccount, status: str, reason: str, user) -> AccountStatusChange:
    """Move ``account`` to ``status`` and record who did it and why.

    Locks the account row and checks the move there. Raises ``LoyaltyError`` for an unknown status, a
    move ``STATUS_MOVES`` does not allow (the same status included), a merged account, or a missing
    reason; nothing changes then. Not idempotent by design: repeating it is refused as a no-op move.
    """
    reason = (reason or "").strip()
    if status not in Status.values:
        raise LoyaltyError("Unknown account status.")
    if not reason or len(reason) > MAX_REASON_LENGTH or "\x00" in reason:
        raise LoyaltyError(f"Say why, in at most {MAX_REASON_LENGTH} characters.")
    with transaction.atomic():
        locked = loyalty_account_lock(account)
        if locked.merged_into_id is not None:
            raise LoyaltyError("This account was merged into another; change that one.")
        if status not in STATUS_MOVES[locked.status]:
            raise LoyaltyError(
                f"A {locked.get_status_display().lower()} account cannot become {Status(status).label.lower()}."
            )
        now = timezone.now()
        change = AccountStatusChange.objects.create(
            account=locked,
            from_status=locked.status,
            to_status=status,
            reason=reason,
            changed_by=user if getattr(user, "is_authenticated", False) else None,
            occurred_at=now,
        )
        fields = {"status": status}
        if status == Status.CLOSED:
            fields["closed_at"] = now
        LoyaltyAccount.objects.filter(pk=locked.pk).update(**fields)
    account.status = status
    if status == Status.CLOSED:
        account.closed_at = now
    return change
