"""Quiet hours: the local times of day in which a channel may reach a recipient, per country and region."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from campaigns.models.campaigns import Campaign
from customers.models import Channel


class QuietHoursRule(models.Model):
    """One allowed sending window for a channel, in the recipient's local time.

    A channel with no rule at all may send at any hour. When several rules match a recipient, the most
    specific one decides: a region rule beats a country rule, which beats the rule for everywhere; a rule
    for the message's category beats one for all categories. Outside the window a delivery is deferred
    to the next allowed minute, never dropped.
    """

    channel = models.CharField(max_length=8, choices=Channel.choices)
    country = models.CharField(
        max_length=2,
        blank=True,
        default="",
        help_text="ISO 3166 country code in capitals, e.g. US. Leave blank for every country.",
    )
    region = models.CharField(
        max_length=8,
        blank=True,
        default="",
        help_text=(
            "State or province code as stores write it, e.g. FL (needs a country). Leave blank for the whole "
            "country. A customer's region is their home store's state, else the state their phone number's "
            "area belongs to."
        ),
    )
    category = models.CharField(
        max_length=16,
        blank=True,
        default="",
        choices=Campaign.Category.choices,
        help_text="Campaign category this rule is limited to, e.g. promotional. Leave blank for every category.",
    )
    start = models.TimeField(help_text="First allowed local minute, e.g. 08:00.")
    end = models.TimeField(help_text="Sending stops at this local time, e.g. 21:00 (the window ends just before it).")
    note = models.CharField(max_length=200, blank=True, help_text="Why this window, e.g. the law it follows.")

    class Meta:
        ordering = ["channel", "country", "region", "category"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "country", "region", "category"], name="quiet_hours_rule_unique_scope"
            ),
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="quiet_hours_rule_start_before_end"),
            models.CheckConstraint(
                condition=Q(region="") | ~Q(country=""), name="quiet_hours_rule_region_needs_country"
            ),
        ]

    def __str__(self) -> str:
        where = "-".join(part for part in (self.country, self.region) if part) or "everywhere"
        scope = f" ({self.category})" if self.category else ""
        return f"{self.get_channel_display()} {where}{scope}: {self.start:%H:%M} to {self.end:%H:%M}"

    def clean(self) -> None:
        self.country = (self.country or "").strip().upper()
        self.region = (self.region or "").strip().upper()
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValidationError({"end": "The window must end after it starts, on the same day."})
        if self.region and not self.country:
            raise ValidationError({"country": "A region rule needs its country."})
