"""Operating a running campaign: what a staff move (cancel) does to its deliveries at once."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from campaigns.models import Delivery


def campaign_deliveries_cancel(*, campaign_id: int, now: datetime | None = None) -> int:
    """Mark the campaign's queued deliveries cancelled (reason ``cancelled``); returns how many.

    Rows already claimed (``sending``) finish their send: they are past the point where a cancel can stop
    them. Idempotent; the sweeper does the same for a cancel that raced a launch. Call it in the
    transaction that cancels the campaign, so the two commit together.
    """
    now = now or timezone.now()
    with transaction.atomic():
        return Delivery.objects.filter(
            cause_type=Delivery.Cause.CAMPAIGN, cause_id=campaign_id, status=Delivery.Status.QUEUED
        ).update(
            status=Delivery.Status.CANCELLED,
            reason=Delivery.Reason.CANCELLED,
            lease_until=None,
            updated_at=now,
        )
