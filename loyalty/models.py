"""Loyalty: programme, earn rules, bonus windows, tiers, accounts with an append-only points ledger,
offers, coupon codes and every redemption (till and online).

loyalty builds on customers and never on campaigns: a campaign that hands out a coupon code links to
the code from its own side, so attribution joins redemption -> code <- delivery.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from customers.models import AppendOnlyModel, Customer, Purchase, Store
from loyalty.querysets import LedgerEntryQuerySet, LoyaltyAccountQuerySet


class Programme(models.Model):
    class Rounding(models.TextChoices):
        DOWN = "down", "Round down"
        NEAREST = "nearest", "Round to nearest (half up)"
        UP = "up", "Round up"

    class QualificationBasis(models.TextChoices):
        POINTS = "points", "Points earned"
        SPEND = "spend", "Net spend"

    name = models.CharField(max_length=120, unique=True)
    benefit_line = models.CharField(
        max_length=200,
        blank=True,
        help_text="One line shown to the clerk next to the enrol box, e.g. '1 point per $1'.",
    )
    is_active = models.BooleanField(default=True)
    currency = models.CharField(max_length=3, default="USD")
    # Earn rules. Discounts and reward value never earn: the base is the net amount paid.
    points_per_unit = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        default=Decimal("1"),
        validators=[MinValueValidator(0)],
        help_text="Points per currency unit of net spend.",
    )
    percent_back = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Percent of net spend given back as points worth `point value` each.",
    )
    point_value = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        default=Decimal("0.01"),
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="What one point is worth when spent, in the programme currency.",
    )
    rounding = models.CharField(max_length=8, choices=Rounding.choices, default=Rounding.DOWN)
    minimum_spend = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    points_expire_after_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Earned points expire this many days after they were earned; empty: never."
    )
    expiring_soon_days = models.PositiveIntegerField(default=30)
    qualification_basis = models.CharField(
        max_length=8, choices=QualificationBasis.choices, default=QualificationBasis.POINTS
    )
    qualification_window_days = models.PositiveIntegerField(default=365, help_text="Rolling window for tiers.")
    downgrade_grace_days = models.PositiveIntegerField(
        default=30, help_text="How long an account keeps its tier after it stops qualifying."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tier(models.Model):
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(max_length=60)
    rank = models.PositiveSmallIntegerField(help_text="Higher is better; the entry tier has the lowest rank.")
    threshold_points = models.PositiveIntegerField(default=0, help_text="Points earned within the window.")
    threshold_spend = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), help_text="Net spend within the window."
    )
    multiplier = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(0)]
    )
    benefits = models.TextField(blank=True)

    class Meta:
        ordering = ["programme", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "rank"], name="tier_rank_unique"),
            models.UniqueConstraint(fields=["programme", "name"], name="tier_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class LoyaltyAccount(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="loyalty_accounts")
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="accounts")
    card_number = models.CharField(max_length=16, unique=True, editable=False)
    points_balance = models.IntegerField(default=0, editable=False)
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts")
    tier_since = models.DateTimeField(null=True, blank=True)
    tier_grace_until = models.DateTimeField(
        null=True, blank=True, help_text="Set when the account stopped qualifying for its tier."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    enrolled_at = models.DateTimeField(auto_now_add=True)
    enrolled_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Expiry has been applied for every credit that expired up to this moment.
    expired_through = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set when the profile holding this account was merged: its points moved to that account, whose
    # tier qualification also counts what was earned here.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_accounts", editable=False
    )

    objects = LoyaltyAccountQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "programme"], name="loyalty_account_unique_per_programme"),
            models.CheckConstraint(condition=models.Q(points_balance__gte=0), name="loyalty_balance_not_negative"),
        ]
        indexes = [models.Index(fields=["programme", "tier"])]

    def __str__(self) -> str:
        return f"Card {self.card_number}"


class LedgerEntry(AppendOnlyModel):
    """One append-only line of an account's points ledger; the balance is the sum of ``points``."""

    append_only_name = "The points ledger"

    class Kind(models.TextChoices):
        EARN = "earn", "Earned"
        REDEEM = "redeem", "Redeemed"
        EXPIRE = "expire", "Expired"
        ADJUST = "adjust", "Adjusted"
        REVERSE = "reverse", "Reversed"
        RESTORE = "restore", "Restored (redemption cancelled)"
        MERGE = "merge", "Moved (profiles merged)"
        FORFEIT = "forfeit", "Forfeited (account closed)"

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    points = models.IntegerField(help_text="Positive for credits, negative for debits.")
    balance_after = models.IntegerField()
    occurred_at = models.DateTimeField()
    # Credits expire first-in-first-out; every credit of a programme with expiry carries its date.
    expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    purchase = models.ForeignKey(
        Purchase, null=True, blank=True, on_delete=models.PROTECT, related_name="loyalty_entries"
    )
    redemption = models.ForeignKey(
        "Redemption", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    bonus_window = models.ForeignKey(
        "BonusWindow", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    idempotency_key = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="ledger_idempotency_unique"),
            models.CheckConstraint(condition=~models.Q(points=0), name="ledger_points_not_zero"),
            models.CheckConstraint(condition=models.Q(balance_after__gte=0), name="ledger_balance_after_not_negative"),
        ]
        indexes = [
            models.Index(fields=["account", "occurred_at"]),
            models.Index(fields=["account", "expires_at"]),
            models.Index(fields=["purchase"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points:+d}"



class TierChange(models.Model):
    class Reason(models.TextChoices):
        UPGRADE = "upgrade", "Upgraded on earn"
        DOWNGRADE = "downgrade", "Downgraded after grace period"
        ENROL = "enrol", "Entry tier on enrolment"
        MERGE = "merge", "Carried over from a merged profile"

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    qualifying_value = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_tier or '-'} -> {self.to_tier or '-'} ({self.get_reason_display()})"


class AccountStatusChange(models.Model):
    """Append-only record of a status change staff made to an account, with who and why."""

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, choices=LoyaltyAccount.Status.choices)
    to_status = models.CharField(max_length=16, choices=LoyaltyAccount.Status.choices)
    reason = models.CharField(max_length=300)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_from_status_display()} -> {self.get_to_status_display()}"


class BonusWindow(models.Model):
    """A time-boxed bonus: a multiplier or fixed points, in the local time of the store (online: customer)."""

    class Kind(models.TextChoices):
        MULTIPLIER = "multiplier", "Multiply base points"
        FIXED = "fixed", "Fixed bonus points"

    class Combine(models.TextChoices):
        STACK = "stack", "Stacks with other windows"
        BEST = "best", "Best one wins (among 'best' windows)"

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="bonus_windows")
    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MULTIPLIER)
    multiplier = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("2"),
        validators=[MinValueValidator(1)],
        help_text="Total multiplier of base points: 2 means double points.",
    )
    fixed_points = models.PositiveIntegerField(default=0)
    combine = models.CharField(max_length=8, choices=Combine.choices, default=Combine.BEST)
    starts_on = models.DateField(help_text="First local date, inclusive.")
    ends_on = models.DateField(help_text="Last local date, inclusive.")
    days_of_week = models.CharField(
        max_length=7, blank=True, help_text="ISO weekdays as digits, 1 = Monday … 7 = Sunday; empty: every day."
    )
    start_time = models.TimeField(null=True, blank=True, help_text="Local time, inclusive; empty: from midnight.")
    end_time = models.TimeField(null=True, blank=True, help_text="Local time, exclusive; empty: to midnight.")
    stores = models.ManyToManyField(Store, blank=True, related_name="+", help_text="Empty: every store.")
    applies_in_store = models.BooleanField(default=True)
    applies_online = models.BooleanField(default=True)
    # A segment rule lives above loyalty; campaigns registers a resolver (loyalty.hooks) that answers
    # whether a customer belongs to it. Without a resolver a window limited to a segment never applies.
    segment_reference = models.CharField(
        "segment",
        max_length=100,
        blank=True,
        help_text="Name of an active segment (Campaigns, Segments); empty: everyone. An unknown name matches nobody.",
    )
    budget_points = models.PositiveIntegerField(null=True, blank=True, help_text="Max bonus points issued in all.")
    points_issued = models.PositiveIntegerField(default=0, editable=False)
    per_customer_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Max bonus points per account.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_on", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_on__gte=models.F("starts_on")), name="bonus_window_dates"),
            models.CheckConstraint(
                condition=models.Q(budget_points__isnull=True) | models.Q(points_issued__lte=models.F("budget_points")),
                name="bonus_window_within_budget",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Offer(models.Model):
    class Kind(models.TextChoices):
        PERCENT_OFF = "percent_off", "Percent off"
        AMOUNT_OFF = "amount_off", "Amount off"
        BONUS_POINTS = "bonus_points", "Bonus points"
        FREE_ITEM = "free_item", "Free item"

    class CodeMode(models.TextChoices):
        SHARED = "shared", "One shared code"
        UNIQUE = "unique", "Unique codes per recipient"

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="offers")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    percent_off = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(100)],
    )
    amount_off = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))]
    )
    bonus_points = models.PositiveIntegerField(null=True, blank=True)
    free_item = models.CharField(max_length=120, blank=True)
    points_cost = models.PositiveIntegerField(
        null=True, blank=True, help_text="Set for a reward bought with points at the till (no code needed)."
    )
    code_mode = models.CharField(max_length=8, choices=CodeMode.choices, default=CodeMode.SHARED)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    per_customer_limit = models.PositiveIntegerField(null=True, blank=True)
    total_limit = models.PositiveIntegerField(null=True, blank=True)
    redemptions_count = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-valid_from", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(valid_until__gt=models.F("valid_from")), name="offer_validity"),
            models.CheckConstraint(
                condition=models.Q(total_limit__isnull=True) | models.Q(redemptions_count__lte=models.F("total_limit")),
                name="offer_within_total_limit",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="percent_off", percent_off__isnull=True)
                & ~models.Q(kind="amount_off", amount_off__isnull=True)
                & ~models.Q(kind="bonus_points", bonus_points__isnull=True)
                & ~models.Q(kind="free_item", free_item=""),
                name="offer_kind_has_its_value",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        needed = {
            self.Kind.PERCENT_OFF: ("percent_off", self.percent_off is not None),
            self.Kind.AMOUNT_OFF: ("amount_off", self.amount_off is not None),
            self.Kind.BONUS_POINTS: ("bonus_points", bool(self.bonus_points)),
            self.Kind.FREE_ITEM: ("free_item", bool(self.free_item)),
        }
        if self.kind in needed and not needed[self.kind][1]:
            raise ValidationError({needed[self.kind][0]: "This kind of offer needs this value."})
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValidationError({"valid_until": "The offer must end after it starts."})

    @property
    def gives(self) -> str:
        """What the offer gives, in words for the clerk."""
        if self.kind == self.Kind.PERCENT_OFF:
            return f"{self.percent_off.normalize():f} % off"
        if self.kind == self.Kind.AMOUNT_OFF:
            return f"{self.amount_off} {self.programme.currency} off"
        if self.kind == self.Kind.BONUS_POINTS:
            return f"{self.bonus_points} bonus points"
        return f"Free {self.free_item}"


class CouponCode(models.Model):
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="codes")
    code = models.CharField(max_length=32, unique=True, help_text="Stored upper-case.")
    max_uses = models.PositiveIntegerField(null=True, blank=True, default=1, help_text="Empty: unlimited.")
    uses = models.PositiveIntegerField(default=0, editable=False)
    # A unique code handed to one customer; only that customer may redeem it.
    account = models.ForeignKey(
        LoyaltyAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="coupon_codes"
    )
    issued_at = models.DateTimeField(null=True, blank=True)
    issue_reference = models.CharField(
        max_length=100, blank=True, help_text="Where the code was handed out, e.g. a batch or message reference."
    )
    is_void = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["offer", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_uses__isnull=True) | models.Q(uses__lte=models.F("max_uses")),
                name="coupon_code_within_max_uses",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Redemption(models.Model):
    """Every redemption of a code or of points, at a till or online; the log the admin filters."""

    class Kind(models.TextChoices):
        CODE = "code", "Coupon code"
        POINTS = "points", "Points"

    class Channel(models.TextChoices):
        STORE = "store", "In store"
        ONLINE = "online", "Online"

    class Status(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="redemptions")
    account = models.ForeignKey(
        LoyaltyAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="redemptions"
    )
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="redemptions")
    coupon_code = models.ForeignKey(
        CouponCode, null=True, blank=True, on_delete=models.PROTECT, related_name="redemptions"
    )
    points = models.PositiveIntegerField(default=0, help_text="Points spent.")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    order_reference = models.CharField(max_length=100, blank=True)
    order_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    discount_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    description = models.CharField(max_length=300, blank=True, help_text="What was given, in words.")
    idempotency_key = models.CharField(max_length=160, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONFIRMED)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channel="online") | models.Q(store__isnull=False),
                name="redemption_in_store_has_store",
            ),
        ]
        indexes = [
            models.Index(fields=["offer", "customer", "status"]),
            models.Index(fields=["store", "created_at"]),
            models.Index(fields=["customer", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} redemption {self.pk} ({self.get_status_display()})"
