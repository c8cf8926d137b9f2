"""Audiences: rule-based or uploaded segments; a segment flagged as persona chooses message variants."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from campaigns.querysets import SegmentQuerySet


class Segment(models.Model):
    class Kind(models.TextChoices):
        RULES = "rules", "Rules"
        STATIC = "static", "Uploaded list"

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True, help_text="Who this is; for a persona, how to talk to them.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.RULES)
    rules = models.JSONField(
        default=dict,
        blank=True,
        help_text='Nested groups: {"match": "all"|"any"|"none", "rules": [...]}; see the rule reference below.',
    )
    is_persona = models.BooleanField(
        default=False, help_text="Personas get their own column of message variants (at most four active)."
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SegmentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} (persona)" if self.is_persona else self.name

    def clean(self) -> None:
        from campaigns.segments import RuleError, rules_validate

        if self.kind == self.Kind.RULES:
            try:
                rules_validate(self.rules or {})
            except RuleError as exc:
                raise ValidationError({"rules": str(exc)}) from exc
        if self.is_persona and not self.description.strip():
            raise ValidationError({"description": "A persona needs a description the copywriters can follow."})


class SegmentMember(models.Model):
    """One customer of an uploaded (static) segment."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_unique")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"
