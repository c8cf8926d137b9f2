"""The consent and suppression effects every feedback path shares, through the customers services."""

from __future__ import annotations

from datetime import datetime

from customers.models import Customer, Suppression
from customers.services.consent import Evidence, consent_withdraw, suppression_add


def customer_opt_out(
    *, customer_id: int | None, channel: str, method: str, source_reference: str, note: str, occurred_at: datetime
) -> bool:
    """Withdraw ``channel`` consent of the customer, when it still exists as an active profile; True if it did.

    Locks the customer, then its consent state (``consent_withdraw``); call inside the transaction that
    stored the event, so a replay (which stores nothing) withdraws nothing twice.
    """
    if customer_id is None:
        return False
    customer = Customer.objects.active().filter(pk=customer_id).first()
    if customer is None:
        return False
    consent_withdraw(
        customer=customer,
        channel=channel,
        evidence=Evidence(
            method=method, occurred_at=occurred_at, source_reference=source_reference[:200], note=note[:500]
        ),
    )
    return True


def address_suppress(*, channel: str, address: str, reason: str, note: str = "") -> bool:
    """Suppress a normalised address (idempotent, the first reason is kept); False without an address."""
    if not address:
        return False
    suppression_add(channel=channel, address=address, reason=reason, note=note)
    return True


SUPPRESSION = Suppression.Reason
