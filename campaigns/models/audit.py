from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who changed what, when: one append-only row per change to a campaign, its message, a segment or a
    journey (publishing a version, pausing, resuming, draining, archiving)."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        STATUS_CHANGED = "status_changed", "Status changed"
        DUPLICATED = "duplicated", "Duplicated"
        TEST_SENT = "test_sent", "Test sent"
        LIST_UPLOADED = "list_uploaded", "List uploaded"
        PUBLISHED = "published", "Published"

    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    subject_type = models.CharField(max_length=32)
    subject_id = models.BigIntegerField()
    subject_label = models.CharField(max_length=200)
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changes = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["subject_type", "subject_id", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.subject_label}: {self.get_action_display()}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)
