"""What texts cost: the price table staff keep, and the cost recorded for each SMS a provider accepted.

Costs are kept in millionths of the currency unit: SMS prices are fractions of a cent (Twilio's US
price is 0.0079 USD a segment), so minor units (cents) would round every text to 0 or 1.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

MICROS = 1_000_000


class SmsPrice(models.Model):
    """The price of one SMS segment to a destination country, used when the provider's answer has none."""

    country = models.CharField(
        max_length=2,
        unique=True,
        blank=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", "Use the two-letter ISO 3166 code in capitals, e.g. GB.")],
        help_text="Destination country (ISO 3166 code, e.g. GB, US). Leave blank for every other country.",
    )
    price_per_segment = models.DecimalField(
        max_digits=10,
        decimal_places=6,
        validators=[MinValueValidator(0)],
        help_text="What one segment (160 GSM-7 or 70 UCS-2 characters; 153/67 once split) costs.",
    )
    currency = models.CharField(
        max_length=3,
        validators=[RegexValidator(r"^[A-Z]{3}$", "Use the three-letter ISO 4217 code in capitals, e.g. EUR.")],
        help_text="ISO 4217 code, e.g. USD, EUR, GBP.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["country"]
        verbose_name = "SMS price"
        constraints = [
            models.CheckConstraint(condition=models.Q(price_per_segment__gte=0), name="sms_price_not_negative")
        ]

    def __str__(self) -> str:
        return f"{self.country or 'Other countries'}: {self.price_per_segment} {self.currency} a segment"


class SmsCost(models.Model):
    """The cost of one text a provider accepted, keyed by its delivery (a table of its own, so the lean
    ``Delivery`` rows of every channel carry no cost columns). ``amount_micros`` is null when neither the
    provider nor the price table knew the price."""

    class Source(models.TextChoices):
        PROVIDER = "provider", "Provider's price"
        PRICE_TABLE = "price_table", "Price table times segments"
        UNKNOWN = "unknown", "Unknown"

    delivery_id = models.BigIntegerField(primary_key=True)
    cause_type = models.CharField(max_length=16)
    cause_id = models.BigIntegerField()
    sent_at = models.DateTimeField()
    segments = models.PositiveSmallIntegerField()
    country = models.CharField(max_length=2, blank=True)
    amount_micros = models.BigIntegerField(null=True, blank=True, help_text="Millionths of the currency unit.")
    currency = models.CharField(max_length=3, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    # When to ask the provider again for its final price (it is usually null when the text is accepted
    # and set once the carrier bills it); null once the provider's price is in, or it stopped asking.
    settle_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "SMS cost"
        indexes = [
            # A campaign's results sum its texts' costs without reading its (many more) deliveries.
            models.Index(fields=["cause_type", "cause_id"], name="sms_cost_by_cause"),
            # Small: rows leave it once the provider's price is in (or after a few days of asking).
            models.Index(
                fields=["settle_after"], name="sms_cost_to_settle", condition=models.Q(settle_after__isnull=False)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_micros__isnull=True) | ~models.Q(currency=""), name="sms_cost_has_currency"
            )
        ]

    def __str__(self) -> str:
        return f"SMS cost of delivery {self.delivery_id}"
