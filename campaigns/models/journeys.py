"""Journeys: triggered automations that step each customer through messages, waits and branches.

A ``Journey`` says when a customer enters (a trigger read from data we already keep, an optional entry
segment, a re-entry rule), when they leave (exit rules, re-checked before every step) and what counts as
success (a goal). What happens in between is a ``JourneyVersion``: an immutable list of steps, each with
a stable ``key``, published as a new version on every edit so people already inside keep their place
(their step key still exists in the new version, or the marketer chose where it moves).

Each entry is an ``Enrolment`` (unique per journey, customer and entry key, so a trigger seen twice
enrols once). Each step an enrolment goes through is one ``JourneyStepRun`` (unique per enrolment and
step key: a step runs at most once per enrolment whatever crashes or retries). A send step's messages
are ``Delivery`` rows whose cause is the step run (``cause_type="journey_step"``, ``cause_id`` = the
run's id), so consent, caps, quiet hours, providers and results work exactly as for a campaign.

Steps (``JourneyVersion.steps``, a JSON list; the first step is where an enrolment starts):

    {"key": "welcome", "kind": "send", "message": <Message id>, "next": "wait-1"}
    {"key": "wait-1", "kind": "wait", "hours": 48, "next": "offer"}
    {"key": "wait-2", "kind": "wait_until", "time": "09:00", "weekdays": [0, 1, 2, 3, 4], "next": "…"}
    {"key": "split", "kind": "branch", "condition": {...}, "yes": "…", "no": "…"}
        condition: {"segment": <Segment id>} | {"rules": <segment rules JSON>}
                 | {"engaged": "opened" | "clicked" | "redeemed", "step": "<send step key>"}
                 | {"random": 50}   (per cent taking "yes"; a holdout is a branch to "exit")
    {"key": "gift", "kind": "coupon", "offer": <loyalty Offer id>, "next": "…"}
    {"key": "bonus", "kind": "points", "points": 100, "reason": "…", "next": "…"}
    {"key": "tag", "kind": "attribute", "name": "welcomed", "value": "yes", "next": "…"}
    {"key": "done", "kind": "exit"}

A missing ``next`` ends the journey (completed).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Journey(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused (nobody moves, nobody enters)"
        DRAINING = "draining", "Draining (no new entries; people inside finish)"
        ARCHIVED = "archived", "Archived"

    class Trigger(models.TextChoices):
        CONSENT_CONFIRMED = "consent_confirmed", "Consent confirmed (welcome)"
        FIRST_CAPTURE = "first_capture", "First capture at a till"
        PURCHASE = "purchase", "A purchase"
        DATE = "date", "A date of the customer's (birthday, sign-up anniversary)"
        INACTIVITY = "inactivity", "No purchase for a number of days"
        POINTS_EXPIRING = "points_expiring", "Points expiring within a number of days"
        TIER_CHANGED = "tier_changed", "Loyalty tier changed"
        COUPON_UNREDEEMED = "coupon_unredeemed", "A coupon issued and not redeemed after a number of days"
        SEGMENT_JOINED = "segment_joined", "Joined a segment"
        REPLENISHMENT_DUE = "replenishment_due", "What they bought usually runs out (replenishment)"

    class Reentry(models.TextChoices):
        NEVER = "never", "Never: each customer goes through once"
        AFTER_DAYS = "after_days", "Again after a number of days"
        EACH_TIME = "each_time", "Each time the trigger happens"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False)
    category = models.CharField(
        max_length=16,
        choices=[
            ("promotional", "Promotional"),
            ("loyalty", "Loyalty"),
            ("event", "Event"),
            ("transactional", "Transactional"),
        ],
        default="promotional",
        help_text="Frequency caps and preference-centre choices apply as for a campaign of this category.",
    )
    trigger = models.CharField(max_length=24, choices=Trigger.choices)
    # e.g. {"channel": "store", "store_ids": [1], "category_ids": [2]} | {"field": "birthday", "time": "09:00"}
    # | {"days": 90} | {"time": "09:00", "category_ids": [2]} (replenishment: categories that run out)
    trigger_params = models.JSONField(default=dict, blank=True)
    entry_segment = models.ForeignKey(
        "campaigns.Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only customers in this segment when they would enter do enter.",
    )
    reentry = models.CharField(max_length=16, choices=Reentry.choices, default=Reentry.NEVER)
    reentry_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # Re-checked before every step, besides the ones that always apply (erased; merged: continues on the
    # survivor): e.g. ["purchase", "consent_withdrawn", "left_segment"].
    exit_rules = models.JSONField(default=list, blank=True)
    # e.g. {"kind": "purchase", "days": 14, "channel": "any"}: counted as a conversion, not an exit.
    goal = models.JSONField(default=dict, blank=True)
    live_version = models.ForeignKey(
        "campaigns.JourneyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    # How far the trigger scan has read (an event time or id, per trigger): a missed tick catches up from here.
    trigger_watermark = models.JSONField(default=dict, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """The steps of a journey as published; never edited (an edit publishes a new version)."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    steps = models.JSONField(default=list)
    # When published over an older version: where people on a removed step go ({"old key": "new key" or "exit"}).
    moves = models.JSONField(default=dict, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["journey", "number"], name="journey_version_unique")]
        ordering = ["journey", "number"]

    def __str__(self) -> str:
        return f"{self.journey} v{self.number}"


class Enrolment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "In the journey"
        COMPLETED = "completed", "Completed"
        EXITED = "exited", "Exited"

    id = models.BigAutoField(primary_key=True)
    # No index of their own on journey and customer: the unique entry, ``enrolment_journey_due`` and
    # ``enrolment_customer`` lead with them, and every index more is written again each time the tick
    # moves an enrolment.
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrolments", db_index=False)
    # Not indexed either: nothing reads enrolments by version (only deleting a version, with its journey, checks).
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    # What made this entry, unique per journey and customer: "" when re-entry is never allowed, else the
    # trigger event ("purchase:123", "date:2026-11-29"), so the same event never enrols twice.
    entry_key = models.CharField(max_length=64, blank=True)
    step_key = models.CharField(max_length=64, blank=True, help_text="The step this enrolment runs next.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    exit_reason = models.CharField(max_length=32, blank=True)
    due_at = models.DateTimeField(null=True, blank=True, help_text="When the current step runs.")
    entered_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True, help_text="When the journey's goal was met.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "customer", "entry_key"], name="enrolment_unique_entry")
        ]
        indexes = [
            # The tick's claim, per journey: active enrolments whose step is due, in the order claimed
            # (id breaks ties: a whole segment enrolled at once is due at one instant).
            models.Index(
                fields=["journey", "due_at", "id"], name="enrolment_journey_due", condition=models.Q(status="active")
            ),
            models.Index(fields=["customer"], name="enrolment_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.journey} · customer {self.customer_id} · {self.step_key or self.status}"


class JourneyStepRun(models.Model):
    """One step one enrolment went through; the unique key makes each step run at most once."""

    id = models.BigAutoField(primary_key=True)
    # Indexed by the unique (enrolment, step_key), which leads with it. Not checked by the database (as
    # deliveries' and frequency counters' keys are not): the tick inserts a run for every step of every
    # enrolment, and the check cost a third of the insert; deleting an enrolment still deletes its runs
    # (Django cascades).
    enrolment = models.ForeignKey(
        Enrolment, on_delete=models.CASCADE, related_name="step_runs", db_index=False, db_constraint=False
    )
    step_key = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)
    # Which version's step ran, for the record. Neither indexed nor checked by the database (Django still
    # protects a version from deletion): nothing reads runs by version, and the check cost a third of
    # the insert too. Versions are only ever deleted with their journey, whose enrolments go first.
    version = models.ForeignKey(
        JourneyVersion, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    # e.g. "sent" (deliveries written), "yes" / "no" (a branch), "issued" (a coupon), "skipped"
    outcome = models.CharField(max_length=32, blank=True)
    ran_at = models.DateTimeField()
    # The code a coupon step handed out: the journey's later messages carry it as {{ coupon_code }}.
    coupon_code = models.ForeignKey(
        "loyalty.CouponCode", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["enrolment", "step_key"], name="journey_step_once")]
        indexes = [
            # only the runs that gave a code: the many other runs are inserted without touching it
            models.Index(
                fields=["coupon_code"], name="journey_step_run_code", condition=models.Q(coupon_code__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"{self.step_key} of enrolment {self.enrolment_id}"


class JourneySegmentMark(models.Model):
    """Who was in a "joined a segment" journey's segment at its last tick: the next tick enrols the
    members not marked here, then brings the marks up to date (set-based, in the same transaction)."""

    id = models.BigAutoField(primary_key=True)
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["journey", "customer"], name="journey_segment_mark_unique")]

    def __str__(self) -> str:
        return f"{self.journey_id} · customer {self.customer_id}"
