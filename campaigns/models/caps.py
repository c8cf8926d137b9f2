"""Frequency caps as data: rules edited in the admin, and the counters that reservations move.

The reserve and release logic, and the reasons for the counter layout, are in
``campaigns/delivery/caps.py``.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import models

from customers.models import Channel

#: the bucket of the one counter row per (rule, customer) that minimum-gap rules use and that
#: rolling-window rules lock first (it never falls inside a calendar or rolling window)
HEAD_BUCKET = datetime.date(2000, 1, 1)


class FrequencyRule(models.Model):
    class Window(models.TextChoices):
        CALENDAR_DAY = "calendar_day", "Calendar day (midnight to midnight in the recipient's zone)"
        CALENDAR_WEEK = "calendar_week", "Calendar week (Monday to Sunday in the recipient's zone)"
        ROLLING_DAYS = "rolling_days", "Rolling: today and the days before it (UTC days)"
        MIN_GAP = "min_gap", "Minimum gap between two messages"

    class LimitSource(models.TextChoices):
        RULE = "rule", "The limit set here"
        CUSTOMER = "customer", "Each customer's own weekly choice (customers without one are not capped by it)"

    CATEGORY_CHOICES = [
        ("promotional", "Promotional"),
        ("loyalty", "Loyalty"),
        ("event", "Event"),
    ]

    name = models.CharField(max_length=120, help_text="Shown as the reason when a message is held back.")
    channel = models.CharField(
        max_length=8,
        choices=Channel.choices,
        blank=True,
        help_text="Leave empty to count messages on every channel together.",
    )
    category = models.CharField(
        max_length=16,
        choices=CATEGORY_CHOICES,
        blank=True,
        help_text="Leave empty for every marketing category. Transactional messages are never capped.",
    )
    window = models.CharField(
        max_length=16,
        choices=Window.choices,
        default=Window.CALENDAR_DAY,
        help_text="Calendar windows restart at the recipient's local midnight (weeks on Monday); a rolling "
        "window counts today and the days before it; a minimum gap spaces any two messages.",
    )
    limit = models.PositiveSmallIntegerField(
        default=1,
        help_text="Most messages allowed in the window. Ignored for a minimum gap (one message per gap) and when "
        "the limit comes from the customer.",
    )
    days = models.PositiveSmallIntegerField(
        default=7, help_text="Length of a rolling window in days (1 to 31). Ignored by other windows."
    )
    gap_hours = models.PositiveSmallIntegerField(
        default=24, help_text="Minimum hours between two messages (1 to 744). Only for a minimum gap."
    )
    limit_source = models.CharField(
        max_length=8,
        choices=LimitSource.choices,
        default=LimitSource.RULE,
        help_text="“Each customer's own choice” honours the limit a customer asked for (e.g. one a week).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.window == self.Window.ROLLING_DAYS and not 1 <= self.days <= 31:
            raise ValidationError({"days": "A rolling window is 1 to 31 days long."})
        if self.window == self.Window.MIN_GAP:
            if not 1 <= self.gap_hours <= 744:
                raise ValidationError({"gap_hours": "A gap is 1 to 744 hours (31 days)."})
            if self.limit_source == self.LimitSource.CUSTOMER:
                raise ValidationError({"limit_source": "A minimum gap has no limit to take from the customer."})
        elif self.limit_source == self.LimitSource.RULE and self.limit < 1:
            raise ValidationError({"limit": "Allow at least one message (deactivate the rule to stop all)."})


class FrequencyCounter(models.Model):
    """Messages reserved for one customer under one rule in one bucket (a local day or week, a UTC day).

    Minimum-gap rules keep one row per (rule, customer) in ``HEAD_BUCKET`` holding the time of the last
    reservation. Rows are written only by set-based statements in ``campaigns.delivery.caps``.
    """

    id = models.BigAutoField(primary_key=True)
    # No database foreign keys or extra indexes: each would cost a trigger call or a B-tree insert per
    # reserved row; deleting a rule still deletes its counters (Django cascades), and the unique key
    # serves every lookup.
    rule = models.ForeignKey(
        FrequencyRule, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+"
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="+"
    )
    bucket = models.DateField()
    used = models.PositiveIntegerField(default=0)
    #: the limit this bucket had at its last reservation (rolling windows: the rule's limit minus what
    #: the window's other days already hold)
    allowance = models.IntegerField(default=0)
    last_at = models.DateTimeField(null=True)
    #: ``last_at`` before the last reservation, so releasing that reservation restores a gap
    previous_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "customer", "bucket"], name="frequency_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id} customer {self.customer_id} {self.bucket}: {self.used}"
