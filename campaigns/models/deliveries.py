"""Deliveries: one row per (cause, customer, channel), the unit the send pipeline claims and records.

Shaped for volume (millions of rows per campaign): bigint keys, plain id columns without database
foreign keys or their indexes (each would cost a lookup or a B-tree insert per row at launch), and only
the indexes the claim, the sweeper and the admin need. Integrity comes from the launch statement, which
selects existing customers and variants, and from the unique key. Partitioning per cause (a fresh
partition filled, keyed, then attached) is the next step for very large sends.
"""

from __future__ import annotations

from django.db import models

from customers.models import Channel


class Delivery(models.Model):
    class Cause(models.TextChoices):
        CAMPAIGN = "campaign", "Campaign"
        JOURNEY_STEP = "journey_step", "Journey step"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DEFERRED = "deferred", "Deferred"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown (worker lost mid-send; not resent)"
        CANCELLED = "cancelled", "Cancelled"

    class Reason(models.TextChoices):
        NO_CONSENT = "no_consent", "No consent"
        MISSING_ADDRESS = "missing_address", "Missing address"
        SUPPRESSED = "suppressed", "Suppressed address"
        FREQUENCY_CAP = "frequency_cap", "Frequency cap"
        QUIET_HOURS = "quiet_hours", "Quiet hours"
        INVALID_ADDRESS = "invalid_address", "Invalid address"
        PROVIDER_REFUSED = "provider_refused", "Refused by the provider"
        PROVIDER_UNAVAILABLE = "provider_unavailable", "Provider unavailable (retries exhausted)"
        RENDER_FAILED = "render_failed", "Message could not be rendered"
        NO_VARIANT = "no_variant", "No variant for this channel"
        LEASE_EXPIRED = "lease_expired", "Worker lost while sending"
        CANCELLED = "cancelled", "Campaign cancelled"
        MERGED = "merged", "Profile merged into another"
        ERASED = "erased", "Profile erased"
        PAUSED = "paused", "Paused by the customer"
        CATEGORY_LEFT = "category_left", "Customer left this kind of message"
        LOCAL_TIME = "local_time", "Waiting for the local send time"
        HOLDOUT = "holdout", "Held out (control group)"

    PENDING_STATUSES = (Status.QUEUED, Status.SENDING)

    id = models.BigAutoField(primary_key=True)
    cause_type = models.CharField(max_length=16, choices=Cause.choices)
    cause_id = models.BigIntegerField()
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    message = models.ForeignKey(
        "campaigns.Message", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    variant = models.ForeignKey(
        "campaigns.Variant",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    coupon_code = models.ForeignKey(
        "loyalty.CouponCode",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=24, choices=Reason.choices, blank=True)
    error = models.CharField(max_length=500, blank=True)
    address = models.CharField(max_length=320, blank=True, help_text="The address the message was sent to.")
    provider_message_id = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    # Queued: a task for this row was published and may still run until then (the sweeper waits).
    # Sending: the claim holds the row until then; past it the worker is presumed lost.
    lease_until = models.DateTimeField(null=True, blank=True)
    # Set in one statement just before the provider is called: a row lost in ``sending`` without it
    # never reached a provider and is safe to send again; with it, it may have and is never resent.
    handed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the provider reported after the send (webhooks). The status only moves forward in
    # ``campaigns.feedback.status`` rank order, whatever order the callbacks arrive in.
    provider_status = models.CharField(max_length=16, blank=True, default="", db_default="")
    provider_status_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True, help_text="First open reported.")
    clicked_at = models.DateTimeField(null=True, blank=True, help_text="First click reported.")
    complained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["cause_type", "cause_id", "customer", "channel"], name="delivery_unique_per_cause"
            )
        ]
        indexes = [
            # Small: rows leave it once sent. Serves the chunk claim, the sweeper and "is this campaign
            # finished?". The id makes a chunk's claim a range scan inside its campaign: without it the
            # planner, whose statistics lag a fresh launch, filtered every pending row of the campaign
            # for each chunk (160 ms a chunk at 800 k rows, and growing with the campaign).
            models.Index(
                fields=["cause_type", "cause_id", "id"],
                name="delivery_pending",
                condition=models.Q(status__in=["queued", "sending"]),
            )
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk}: {self.channel} to customer {self.customer_id} ({self.status})"


class OutboxMessage(models.Model):
    """What would have left through a provider, kept for the demo when none is configured."""

    id = models.BigAutoField(primary_key=True)
    delivery_id = models.BigIntegerField(unique=True)
    cause_type = models.CharField(max_length=16)
    cause_id = models.BigIntegerField()
    channel = models.CharField(max_length=8, choices=Channel.choices)
    to = models.CharField(max_length=320)
    subject = models.CharField(max_length=300, blank=True)
    preheader = models.CharField(max_length=300, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True, help_text="Email plain-text part, SMS text or push body.")
    title = models.CharField(max_length=300, blank=True, help_text="Push title.")
    url = models.CharField(max_length=500, blank=True, help_text="Push link.")
    image_url = models.CharField(max_length=500, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["cause_type", "cause_id"], name="outbox_by_cause")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.to}"
