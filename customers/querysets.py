from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower


class CustomerQuerySet(models.QuerySet):
    def active(self):
        return self.filter(merged_into__isnull=True, erased_at__isnull=True)

    def with_email(self, email: str):
        """Match an already normalised email case-insensitively, using the Lower(email) index."""
        return self.alias(email_lower=Lower("email")).filter(email_lower=email.lower())

    def with_phone(self, e164: str):
        return self.filter(phone=e164)

    def for_store(self, store):
        return self.filter(home_store=store)


class ConsentEvidenceQuerySet(models.QuerySet):
    def for_channel(self, channel: str):
        return self.filter(channel=channel)
