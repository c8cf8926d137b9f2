"""Query vocabulary of the loyalty models."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce


class LoyaltyAccountQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status="active")

    def for_card(self, card_number: str):
        return self.filter(card_number=card_number)


class LedgerEntryQuerySet(models.QuerySet):
    def credits(self):
        return self.filter(points__gt=0)

    def debits(self):
        return self.filter(points__lt=0)

    def points_sum(self) -> int:
        return self.aggregate(total=Coalesce(Sum("points"), 0))["total"]

    def expiry_totals(self, *, until: datetime) -> dict[str, int]:
        """Credits expiring up to ``until`` and all debits so far, in one query."""
        return self.aggregate(
            expiring=Coalesce(Sum("points", filter=Q(points__gt=0, expires_at__lte=until)), 0),
            debited=Coalesce(Sum("points", filter=Q(points__lt=0)), 0),
        )
