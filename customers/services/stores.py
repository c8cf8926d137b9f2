"""Stores: saving one, and carrying a changed time zone to the customers whose zone came from it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from customers.models import Customer, Store


def store_save(*, store: Store) -> int:
    """Validate and save ``store``; when its time zone changed, give it to every customer whose zone came
    from this store (``time_zone_source == "store"``), in one UPDATE. Explicit and phone zones stay.

    Locks the store row (an edit of the same store waits, so the last zone saved is the one customers
    get). Idempotent: saving an unchanged store updates no customer. Returns how many customers changed.
    Raises ``django.core.exceptions.ValidationError`` (nothing saved) for an invalid store, e.g. a time
    zone that is not an IANA name.
    """
    store.full_clean()
    with transaction.atomic():
        if store.pk is None:
            store.save()
            return 0
        Store.objects.select_for_update().filter(pk=store.pk).values_list("pk", flat=True).first()
        store.save()
        return (
            Customer.objects.filter(home_store_id=store.pk, time_zone_source=Customer.TimeZoneSource.STORE)
            .exclude(time_zone=store.time_zone)
            .update(time_zone=store.time_zone, updated_at=timezone.now())
        )
