from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from customers.exceptions import InvalidContact
from customers.models import Channel
from customers.normalization import normalize_email, normalize_phone


class StaffTestRecipient(models.Model):
    """A staff address or phone that test sends may go to, besides customers who consented.

    Test sends never reach a number typed at random: only these (kept by marketing leads in the admin)
    or a customer with consent and no suppression.
    """

    CHANNELS = [(Channel.EMAIL.value, "Email"), (Channel.SMS.value, "SMS")]

    channel = models.CharField(max_length=8, choices=CHANNELS)
    address = models.CharField(max_length=320, help_text="An email address or a phone number (stored as E.164).")
    label = models.CharField(max_length=120, help_text="Whose it is, e.g. 'Ana, marketing (work phone)'.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "address"], name="staff_test_recipient_unique")]
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.address})"

    def clean(self) -> None:
        try:
            if self.channel == Channel.EMAIL:
                self.address = normalize_email(self.address or "")
            elif self.channel == Channel.SMS:
                self.address = normalize_phone(self.address or "")
        except InvalidContact as exc:
            raise ValidationError({"address": str(exc)}) from exc
