from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from customers.models import Channel


def capped_action_default(category: str) -> str:
    """Promotional messages are skipped when capped (stale tomorrow); loyalty and event ones wait."""
    return "skip" if category == "promotional" else "defer"


def default_channels() -> list[str]:
    return [Channel.EMAIL.value]


def channel_order_problem(value) -> str | None:
    """Why ``value`` is not an ordered list of channels (known, each once, at least one), or None."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return "Give the channels as a list of names, e.g. email, sms."
    unknown = [item for item in value if item not in Channel.values]
    if unknown:
        return f"Unknown channel {unknown[0]!r}; use email, sms, push."
    if not value:
        return "Choose at least one channel."
    if len(set(value)) != len(value):
        return "Name each channel once."
    return None


class Campaign(models.Model):
    class Goal(models.TextChoices):
        AWARENESS = "awareness", "Awareness"
        ENGAGEMENT = "engagement", "Engagement"
        CONVERSION = "conversion", "Conversion"
        LOYALTY = "loyalty", "Loyalty"

    class Kpi(models.TextChoices):
        OPEN_RATE = "open_rate", "Open rate"
        CLICK_RATE = "click_rate", "Click rate"
        CONVERSION_RATE = "conversion_rate", "Purchases after the message"
        REVENUE = "revenue", "Attributed revenue"
        REDEMPTIONS = "redemptions", "Coupon redemptions"
        STORE_VISITS = "store_visits", "Store visits"

    class Category(models.TextChoices):
        PROMOTIONAL = "promotional", "Promotional"
        LOYALTY = "loyalty", "Loyalty"
        EVENT = "event", "Event"
        TRANSACTIONAL = "transactional", "Transactional"

    class Mode(models.TextChoices):
        ALL = "all", "Every consented channel"
        PREFERRED = "preferred", "Preferred channel only (first consented in the order given)"

    class CouponMode(models.TextChoices):
        SHARED = "shared", "One shared code for everyone"
        UNIQUE = "unique", "One unique code per message sent"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    class Timing(models.TextChoices):
        NOW = "now", "Now"
        AT = "at", "At a time"
        LOCAL = "local", "At a local time in each recipient's zone"

    class WhenCapped(models.TextChoices):
        BY_CATEGORY = "", "As the category suggests (skip promotional, defer loyalty and event)"
        SKIP = "skip", "Skip the message"
        DEFER = "defer", "Defer it to the next free slot"

    MARKETING_CATEGORIES = frozenset({Category.PROMOTIONAL, Category.LOYALTY, Category.EVENT})
    EDITABLE_STATUSES = frozenset({Status.DRAFT, Status.SCHEDULED})

    name = models.CharField(max_length=200)
    goal = models.CharField(max_length=16, choices=Goal.choices)
    kpi = models.CharField("KPI", max_length=24, choices=Kpi.choices)
    kpi_target = models.DecimalField(
        "KPI target", max_digits=12, decimal_places=2, null=True, blank=True, help_text="e.g. 25 for a 25 % open rate."
    )
    category = models.CharField(
        max_length=16,
        choices=Category.choices,
        default=Category.PROMOTIONAL,
        help_text="Frequency caps apply to promotional, loyalty and event campaigns, not transactional ones.",
    )
    when_capped = models.CharField(
        "when a frequency cap is reached",
        max_length=8,
        choices=WhenCapped.choices,
        blank=True,
        default=WhenCapped.BY_CATEGORY,
        help_text="What happens to a message a frequency cap holds back; the reason is recorded either way.",
    )
    holdout_percent = models.DecimalField(
        "holdout (%)",
        max_digits=4,
        decimal_places=2,
        default=0,
        help_text="A random share of the audience held back at launch (never sent it) to measure lift against.",
        validators=[MinValueValidator(0), MaxValueValidator(50)],
    )
    holdout_mode = models.CharField(
        "hold back",
        max_length=10,
        choices=[("customers", "A random share of customers"), ("stores", "Every customer of the chosen stores")],
        default="customers",
        help_text="Whole stores measure in-store lift: their customers' till purchases against the other stores'.",
    )
    holdout_stores = models.ManyToManyField(
        "customers.Store",
        blank=True,
        related_name="+",
        help_text="With 'every customer of the chosen stores': the stores whose customers are held back.",
    )
    message = models.ForeignKey("campaigns.Message", on_delete=models.PROTECT, related_name="campaigns")
    include_segments = models.ManyToManyField("campaigns.Segment", related_name="included_in", blank=True)
    exclude_segments = models.ManyToManyField("campaigns.Segment", related_name="excluded_from", blank=True)
    # A JSON list keeps the order of preference in the campaign's own row: launching, sending and the
    # forecast read it with the campaign, with no join, on PostgreSQL and SQLite alike.
    channels = models.JSONField(
        default=default_channels,
        help_text='Channel names in order of preference, e.g. ["email", "sms"].',
    )
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ALL)
    offer = models.ForeignKey(
        "loyalty.Offer", null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="Optional."
    )
    coupon_mode = models.CharField(max_length=8, choices=CouponMode.choices, default=CouponMode.SHARED)
    shared_code = models.ForeignKey(
        "loyalty.CouponCode",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="For a shared code: the code every message carries.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False)
    scheduled_at = models.DateTimeField(null=True, blank=True, editable=False)
    timing = models.CharField(max_length=8, choices=Timing.choices, default=Timing.AT, editable=False)
    # For local timing: the wall time every recipient gets it at, in their own zone; scheduled_at is
    # then the first instant any zone reaches it (the launch), each delivery waiting for its own.
    local_send_date = models.DateField(null=True, blank=True, editable=False)
    local_send_time = models.TimeField(null=True, blank=True, editable=False)
    # The zone the schedule was typed in; local timing falls back to it when nothing else is known.
    schedule_zone = models.CharField(max_length=64, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    duplicated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "scheduled_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def holds_out_stores(self) -> bool:
        return self.holdout_mode == "stores"

    @property
    def holds_out(self) -> bool:
        """Whether launch holds anyone back (in store mode: whoever belongs to the chosen stores)."""
        return self.holds_out_stores or bool(self.holdout_percent)

    @property
    def channel_list(self) -> list[str]:
        """The channels in order of preference (a copy: changing it leaves the campaign as it is)."""
        return list(self.channels or [])

    @property
    def local_send_at(self):
        """The naive wall time of a local-timing schedule, else None."""
        import datetime as dt

        if self.timing != self.Timing.LOCAL or self.local_send_date is None or self.local_send_time is None:
            return None
        return dt.datetime.combine(self.local_send_date, self.local_send_time)

    @property
    def is_marketing(self) -> bool:
        return self.category in self.MARKETING_CATEGORIES

    @property
    def capped_action(self) -> str:
        """``"skip"`` or ``"defer"``: the campaign's own choice, else the default for its category."""
        return self.when_capped or capped_action_default(self.category)

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE_STATUSES

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        problem = channel_order_problem(self.channels)
        if problem:
            raise ValidationError({"channels": problem})
        if self.offer_id is None and self.shared_code_id is not None:
            raise ValidationError({"shared_code": "Choose the offer first."})
        if self.offer_id is not None and self.coupon_mode == self.CouponMode.SHARED:
            if self.shared_code_id is None:
                raise ValidationError({"shared_code": "A shared-code offer needs the code to send."})
            if self.shared_code.offer_id != self.offer_id:
                raise ValidationError({"shared_code": "This code belongs to another offer."})
        if self.coupon_mode == self.CouponMode.UNIQUE and self.shared_code_id is not None:
            raise ValidationError({"shared_code": "Unique codes are drawn per message; leave the shared code empty."})


class GoalDashboard(Campaign):
    """The goal dashboard's entry in the admin index (no table of its own: it reads everything else)."""

    class Meta:
        proxy = True
        verbose_name = "goal dashboard"
        verbose_name_plural = "goal dashboard"
