"""Daily roll-ups the goal dashboard reads instead of scanning profiles, purchases and deliveries.

Each row is a count over one day (in ``TIME_ZONE``, the days a ``Period`` is made of) and a few keys;
a period's figure is the sum of its days. ``campaigns.results.rollups`` rebuilds them; nothing else
writes here. Changing ``TIME_ZONE`` moves day boundaries: rebuild them all (``results_rollups_refresh(full=True)``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RollupState(models.Model):
    """Where the incremental refresh got to: rows changed since ``watermark`` mark their days dirty."""

    name = models.CharField(max_length=32, primary_key=True)
    watermark = models.DateTimeField(help_text="Start of the last complete refresh.")
    refreshed_at = models.DateTimeField(null=True, help_text="When it finished; empty: never (next run rebuilds).")

    def __str__(self) -> str:
        return self.name


class ProfileDay(models.Model):
    """Profiles created on ``day`` that are not merged-away duplicates, by source, store and clerk of capture."""

    day = models.DateField()
    source = models.CharField(max_length=16)
    source_store = models.ForeignKey(
        "customers.Store", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    source_clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    profiles = models.PositiveIntegerField()
    checkout_opt_ins = models.PositiveIntegerField(help_text="Of those, with email or SMS consent given at checkout.")
    never_bought = models.PositiveIntegerField(help_text="Of those, with no purchase at all (so far).")

    class Meta:
        indexes = [models.Index(fields=["day"], name="profile_day_by_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.source}: {self.profiles}"


class PurchaseDay(models.Model):
    """Purchases that occurred on ``day`` per channel: the ones kept and the ones refunded (refunds are whole)."""

    day = models.DateField()
    channel = models.CharField(max_length=8)
    kept_orders = models.PositiveIntegerField(help_text="Not refunded.")
    net_revenue = models.DecimalField(max_digits=16, decimal_places=2, help_text="Net of refunds.")
    refunded_amount = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["day"], name="purchase_day_by_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel}: {self.net_revenue}"


class BuyerDay(models.Model):
    """A buyer's purchases kept (not refunded) on ``day``, in store and online."""

    day = models.DateField()
    customer_id = models.BigIntegerField()
    store_orders = models.PositiveIntegerField()
    online_orders = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="buyer_day_by_day")]

    def __str__(self) -> str:
        return f"{self.day} customer {self.customer_id}"


class ValueDay(models.Model):
    """How the historic lifetime value changes on ``day``, per buying place (store, online, both).

    Not a day's own figures but changes: summed over every day up to D they give, as of the end of D,
    the buyers who bought only in store, only online or in both (net of refunds) and their net spend. A
    buyer moves from "store" to "both" on the day of their first online purchase, spend included.
    """

    day = models.DateField()
    mix = models.CharField(max_length=8)
    buyers = models.IntegerField()
    spend = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["day"], name="value_day_by_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.mix}: {self.buyers:+d}"


class CohortDay(models.Model):
    """Buyers of a first-purchase month (``cohort``, UTC) whose first purchase in ``month`` (UTC) fell on ``day``.

    Summed over the days up to D they give how many of each cohort bought in each month, as of the end of D.
    """

    cohort = models.DateField(help_text="First day of the buyers' first-purchase month.")
    month = models.DateField(help_text="First day of the month they bought in.")
    day = models.DateField()
    customers = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="cohort_day_by_day")]

    def __str__(self) -> str:
        return f"{self.cohort:%Y-%m} in {self.month:%Y-%m} on {self.day}: {self.customers}"


class SendDay(models.Model):
    """A campaign's messages sent on ``day`` per channel and variant, with what became of them."""

    day = models.DateField()
    cause_type = models.CharField(max_length=16)
    cause_id = models.BigIntegerField()
    channel = models.CharField(max_length=8)
    variant_id = models.BigIntegerField(null=True)
    messages = models.PositiveIntegerField(help_text="Sent.")
    opens = models.PositiveIntegerField()
    clicks = models.PositiveIntegerField()
    coupons = models.PositiveIntegerField(help_text="Carried a coupon code.")
    redemptions = models.PositiveIntegerField(help_text="Code redeemed by that person after the send, anywhere.")
    store_redemptions = models.PositiveIntegerField()
    online_redemptions = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="send_day_by_day"),
            models.Index(fields=["cause_type", "cause_id"], name="send_day_by_cause"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.cause_type} {self.cause_id} {self.channel}: {self.messages}"


class CodeRedemption(models.Model):
    """A confirmed redemption of a code that a campaign's message carried to that person (pairs, not days:
    the dashboard counts the redemptions by their own time)."""

    cause_id = models.BigIntegerField(help_text="The campaign.")
    redemption_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cause_id", "redemption_id"], name="code_redemption_unique_per_campaign")
        ]

    def __str__(self) -> str:
        return f"campaign {self.cause_id}: redemption {self.redemption_id}"


class PurchaseTouch(models.Model):
    """A purchase kept (not refunded) and the last campaign message sent to that person before it, within
    ``campaigns.results.rollups.TOUCH_HORIZON``: last-touch attribution for any shorter window is this
    message if it is inside the window, and none otherwise."""

    purchase_id = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField()
    day = models.DateField()
    customer_id = models.BigIntegerField()
    purchase_channel = models.CharField(max_length=8)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    sent_at = models.DateTimeField()
    cause_id = models.BigIntegerField(help_text="The campaign.")
    channel = models.CharField(max_length=8)
    variant_id = models.BigIntegerField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["occurred_at"], name="purchase_touch_by_time"),
            models.Index(fields=["day"], name="purchase_touch_by_day"),
        ]

    def __str__(self) -> str:
        return f"purchase {self.purchase_id} after campaign {self.cause_id}"


class JourneyDay(models.Model):
    """A journey's enrolments that entered on ``day`` (and of those, the ones that have met its goal since),
    and the ones that met its goal on ``day``."""

    day = models.DateField()
    journey_id = models.BigIntegerField()
    entries = models.PositiveIntegerField()
    entries_converted = models.PositiveIntegerField()
    conversions = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="journey_day_by_day")]

    def __str__(self) -> str:
        return f"{self.day} journey {self.journey_id}: {self.entries}"


class JourneySendDay(models.Model):
    """Messages a journey's send steps sent on ``day``, by the day the step ran (sends may follow it)."""

    day = models.DateField()
    ran_day = models.DateField()
    journey_id = models.BigIntegerField()
    messages = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="journey_send_day_by_day")]

    def __str__(self) -> str:
        return f"{self.day} journey {self.journey_id}: {self.messages}"


class SignupDay(models.Model):
    """Email and SMS consent grants given on ``day`` per channel and method (new signups only)."""

    day = models.DateField()
    channel = models.CharField(max_length=8)
    method = models.CharField(max_length=24)
    grants = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="signup_day_by_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} {self.method}: {self.grants}"


class HealthDay(models.Model):
    """Bounces, complaints, unsubscribes and STOPs reported on ``day`` (``kind`` names the column)."""

    day = models.DateField()
    kind = models.CharField(max_length=16)
    reports = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"], name="health_day_by_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}: {self.reports}"


class SurveyDay(models.Model):
    """Survey answers whose latest answer was given on ``day``: all, promoters (9-10), detractors (0-6)."""

    day = models.DateField(unique=True)
    answers = models.PositiveIntegerField()
    promoter_answers = models.PositiveIntegerField()
    detractor_answers = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.day}: {self.answers}"


class ReachableCount(models.Model):
    """Active profiles a channel can reach, counted at ``counted_at`` (a snapshot, not a day)."""

    channel = models.CharField(max_length=8, primary_key=True)
    profiles = models.PositiveIntegerField()
    counted_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.channel}: {self.profiles}"


class CampaignFunnelCount(models.Model):
    """A campaign's messages per channel, variant, status and reason, with what became of them: the counts
    its results page's funnel and skipped table add up. Not by day: the page shows a campaign whole."""

    cause_id = models.BigIntegerField(help_text="The campaign.")
    channel = models.CharField(max_length=8)
    variant_id = models.BigIntegerField(null=True)
    status = models.CharField(max_length=16)
    reason = models.CharField(max_length=32, blank=True)
    messages = models.PositiveIntegerField()
    delivered = models.PositiveIntegerField(help_text="Reported delivered, or opened or clicked.")
    opened = models.PositiveIntegerField()
    clicked = models.PositiveIntegerField()
    redemptions = models.PositiveIntegerField(
        help_text="Sent messages only: redemptions of the code each carried, by that person after the send, each "
        "credited to the latest such message."
    )
    redeemed_amount = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["cause_id"], name="campaign_funnel_by_cause")]

    def __str__(self) -> str:
        return f"campaign {self.cause_id} {self.channel} {self.status} {self.reason}: {self.messages}"


class CampaignSummary(models.Model):
    """A campaign's funnel roll-up is complete (``computed_at``), and its holdout lift for the default
    attribution window: per group (treated, held out) the people, those who redeemed the offer, and the sum
    and sum of squares of their spend, measured from the launch to ``lift_until``. Enough for the normal
    approximation of the difference of means the results page draws."""

    cause_id = models.BigIntegerField(unique=True, help_text="The campaign.")
    computed_at = models.DateTimeField()
    lift_until = models.DateTimeField(null=True, help_text="Empty: no lift (no holdout, or not launched).")
    treated_people = models.PositiveIntegerField(default=0)
    treated_redeemers = models.PositiveIntegerField(default=0)
    treated_spend = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    treated_spend_squares = models.FloatField(default=0)
    holdout_people = models.PositiveIntegerField(default=0)
    holdout_redeemers = models.PositiveIntegerField(default=0)
    holdout_spend = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    holdout_spend_squares = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"campaign {self.cause_id} as of {self.computed_at}"
