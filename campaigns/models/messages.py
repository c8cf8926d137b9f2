"""A message is what is said, per persona and channel; campaigns (and later journeys) point at one."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from customers.models import Channel


class Message(models.Model):
    class Purpose(models.TextChoices):
        MARKETING = "marketing", "Marketing"
        TRANSACTIONAL = "transactional", "Transactional"

    name = models.CharField(max_length=200)
    purpose = models.CharField(
        max_length=16,
        choices=Purpose.choices,
        default=Purpose.MARKETING,
        help_text="Marketing texts must carry the brand name and opt-out instructions.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_marketing(self) -> bool:
        return self.purpose == self.Purpose.MARKETING


class Variant(models.Model):
    """One cell of the persona x channel grid; ``persona`` empty is the default column."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="variants")
    persona = models.ForeignKey(
        "campaigns.Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"is_persona": True},
        help_text="Empty: the default, for everyone no persona variant matches.",
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # Email
    subject = models.CharField(max_length=200, blank=True)
    preheader = models.CharField(max_length=200, blank=True, help_text="The grey line inboxes show after the subject.")
    html_body = models.TextField(blank=True, help_text="HTML inside the brand layout; CSS is inlined for you.")
    text_body = models.TextField(blank=True, help_text="Plain-text part; generated from the HTML when empty.")
    # SMS
    sms_body = models.TextField(blank=True)
    # Push
    push_title = models.CharField(max_length=200, blank=True)
    push_body = models.TextField(blank=True)
    push_url = models.CharField(max_length=500, blank=True, help_text="https:// link or an app deep link.")
    push_image_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["message", "persona", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "channel"],
                condition=models.Q(persona__isnull=True),
                name="variant_default_unique",
            ),
            models.UniqueConstraint(
                fields=["message", "persona", "channel"],
                condition=models.Q(persona__isnull=False),
                name="variant_persona_unique",
            ),
        ]

    def __str__(self) -> str:
        who = self.persona.name if self.persona_id else "Default"
        return f"{self.get_channel_display()} / {who}"

    def clean(self) -> None:
        from campaigns.validation import variant_check

        variant_check(self)
