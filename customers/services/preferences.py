"""The customer's own messaging preferences (the preference centre will call these).

Frequency caps in ``campaigns`` read ``Customer.max_messages_per_week``; nothing here knows about
campaigns.
"""

from __future__ import annotations

from customers.exceptions import CustomerError
from customers.models import Customer

#: the highest own weekly limit a customer can choose (above it the house caps bind first)
MAX_MESSAGES_PER_WEEK = 21


class InvalidPreference(CustomerError, ValueError):
    """A preference value outside what customers may choose."""


def customer_frequency_set(*, customer: Customer, max_messages_per_week: int | None) -> Customer:
    """Store the customer's own "at most N marketing messages a week" choice; ``None`` clears it.

    One UPDATE of that column only (no lock: the last choice wins, and no other write depends on it).
    Idempotent. Raises ``InvalidPreference`` (and changes nothing) for a value outside 1 to 21.
    """
    if max_messages_per_week is not None:
        if isinstance(max_messages_per_week, bool) or not isinstance(max_messages_per_week, int):
            raise InvalidPreference("The weekly limit must be a whole number.")
        if not 1 <= max_messages_per_week <= MAX_MESSAGES_PER_WEEK:
            raise InvalidPreference(f"Choose between 1 and {MAX_MESSAGES_PER_WEEK} messages a week.")
    Customer.objects.filter(pk=customer.pk).update(max_messages_per_week=max_messages_per_week)
    customer.max_messages_per_week = max_messages_per_week
    return customer
