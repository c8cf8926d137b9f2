"""What providers tell us after a send: delivery events, per-campaign feedback counts, opt-outs to review.

Like deliveries, these carry plain id columns (no database foreign keys): a webhook must never wait on
a lookup of a parent row, and an event that matches no delivery is still kept (its delivery id empty).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from customers.models import Channel


class DeliveryEvent(models.Model):
    """One provider report, stored once: ``(provider, provider_event_id)`` is unique, so a replay is a no-op."""

    class Kind(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        DEFERRED = "deferred", "Deferred"
        DELIVERED = "delivered", "Delivered"
        UNDELIVERED = "undelivered", "Undelivered"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected by the provider"
        BOUNCED = "bounced", "Bounced (hard)"
        SOFT_BOUNCED = "soft_bounced", "Bounced (soft)"
        COMPLAINED = "complained", "Marked as spam"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed at the provider"
        INBOUND = "inbound", "Reply received"
        OTHER = "other", "Other"

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=32)
    provider_event_id = models.CharField(max_length=200)
    delivery_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    # Only short, validated fields (status, error code and meaning, ESP event type, a URL host): never a
    # raw provider payload, whose text could be anything.
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_event_id"], name="delivery_event_unique_per_provider")
        ]
        indexes = [
            models.Index(
                fields=["delivery_id"], name="delivery_event_by_delivery", condition=models.Q(delivery_id__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.get_kind_display().lower()} (delivery {self.delivery_id or '-'})"


class FeedbackCount(models.Model):
    """Running counts per (cause, channel, kind) so rates are read without scanning deliveries.

    Kinds are ``DeliveryEvent.Kind`` values counted once per delivery (delivered, opened, clicked,
    bounced, complained, unsubscribed, failed) plus ``stopped`` (an SMS opt-out keyword) and
    ``sent_seen``: a lower bound of the sent deliveries, refreshed only when a rate is judged.
    """

    STOPPED = "stopped"
    SENT_SEEN = "sent_seen"

    id = models.BigAutoField(primary_key=True)
    cause_type = models.CharField(max_length=16)
    cause_id = models.BigIntegerField()
    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=16)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cause_type", "cause_id", "channel", "kind"], name="feedback_count_unique")
        ]

    def __str__(self) -> str:
        return f"{self.cause_type} {self.cause_id} {self.channel} {self.kind}: {self.count}"


class SmsOptOutReview(models.Model):
    """A text reply that reads like an opt-out without being a keyword, for staff to review (FCC 24-18)."""

    class Status(models.TextChoices):
        OPEN = "open", "To review"
        WITHDRAWN = "withdrawn", "Consent withdrawn"
        DISMISSED = "dismissed", "Not an opt-out"

    id = models.BigAutoField(primary_key=True)
    message_sid = models.CharField(max_length=64, unique=True)
    from_number = models.CharField(max_length=32, help_text="The sender's number, E.164 when it parsed.")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    delivery_id = models.BigIntegerField(null=True, blank=True, help_text="The last text sent to this number.")
    body = models.TextField(help_text="The reply as received (untrusted text).")
    matched = models.CharField(max_length=100, help_text="The phrase that made it look like an opt-out.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    received_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["status", "received_at"], name="optout_review_by_status")]

    def __str__(self) -> str:
        return f"Reply from {self.from_number} ({self.get_status_display().lower()})"
