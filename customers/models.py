"""Who we talk to: stores, one profile per customer, consent with its evidence, suppression, purchases."""

from __future__ import annotations

import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower

from customers.querysets import ConsentEvidenceQuerySet, CustomerQuerySet


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone such as Europe/Paris.")


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"


class AppendOnlyModel(models.Model):
    """Rows written once, never edited or deleted: a change is recorded as a new row.

    Erasure may still blank personal fields of a saved row (``save(_redaction=True)``).
    """

    #: how the row's kind reads in the error, e.g. "Consent evidence"
    append_only_name = "This record"

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("_redaction", False):
            raise ValueError(f"{self.append_only_name} is append-only; record a new entry instead.")
        kwargs.pop("_redaction", None)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError(f"{self.append_only_name} is append-only and cannot be deleted.")


class Store(models.Model):
    code = models.SlugField(max_length=32, unique=True, help_text="Short code printed on receipts, e.g. NYC-5TH.")
    name = models.CharField(max_length=120)
    street = models.CharField(max_length=200)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20)
    state = models.CharField(max_length=64, blank=True, help_text="State or province code, e.g. FL.")
    country = models.CharField(max_length=2, help_text="ISO 3166 code, e.g. US.")
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    region = models.CharField(max_length=64, blank=True, help_text="Your own grouping, e.g. North-East.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def postal_address(self) -> str:
        locality = " ".join(part for part in (self.postal_code, self.city, self.state) if part)
        return ", ".join(part for part in (self.street, locality, self.country) if part)


class StoreMembership(models.Model):
    class Role(models.TextChoices):
        CLERK = "clerk", "Clerk"
        MANAGER = "manager", "Store manager"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="store_memberships")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CLERK)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "store"], name="store_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_role_display()} at {self.store.code}"


class Source(models.TextChoices):
    WEB = "web", "Web form"
    STORE = "store", "In store"
    IMPORT = "import", "Import"
    API = "api", "API"


class Customer(models.Model):
    class TimeZoneSource(models.TextChoices):
        EXPLICIT = "explicit", "Set explicitly"
        STORE = "store", "Home store"
        PHONE = "phone", "Phone country"
        DEFAULT = "default", "Default"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.CharField(max_length=320, null=True, blank=True)  # noqa: DJ001 (NULL: unique when absent)
    phone = models.CharField(max_length=16, null=True, blank=True, unique=True, help_text="E.164")
    # Keyed hashes of the addresses, so "not suppressed" is a join in SQL and survives erasure.
    email_hmac = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    phone_hmac = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    locale = models.CharField(max_length=16, blank=True, default="en")
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])
    time_zone_source = models.CharField(max_length=16, choices=TimeZoneSource.choices, default=TimeZoneSource.DEFAULT)
    birthday = models.DateField(null=True, blank=True)
    max_messages_per_week = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="The customer's own limit on marketing messages per week (all channels); empty: no own limit.",
    )
    messages_paused_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="The customer paused marketing messages (all channels) until then.",
    )
    home_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices)
    source_store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attributes = models.JSONField(default=dict, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_profiles"
    )
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="customer_email_unique_ci")]
        indexes = [models.Index(fields=["home_store"]), models.Index(fields=["source"])]

    def __str__(self) -> str:
        if self.erased_at:
            return f"Erased customer {str(self.public_id)[:8]}"
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or self.email or self.phone or f"Customer {str(self.public_id)[:8]}"

    @property
    def is_active_profile(self) -> bool:
        return self.merged_into_id is None and self.erased_at is None


class MarketingCategory(models.TextChoices):
    """The kinds of marketing a customer can leave one by one (campaigns use the same values)."""

    PROMOTIONAL = "promotional", "Promotions and offers"
    LOYALTY = "loyalty", "Loyalty programme news"
    EVENT = "event", "In-store events"


class CategoryOptOut(models.Model):
    """A kind of marketing the customer left; campaigns of that category do not reach them."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="category_opt_outs")
    category = models.CharField(max_length=16, choices=MarketingCategory.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "category"], name="category_opt_out_unique")]

    def __str__(self) -> str:
        return f"Left {self.get_category_display().lower()}"


class PreferenceEvidence(AppendOnlyModel):
    """One append-only line of what a customer changed about their messages besides consent."""

    append_only_name = "Preference evidence"

    class Action(models.TextChoices):
        CATEGORY_LEFT = "category_left", "Left a category"
        CATEGORY_REJOINED = "category_rejoined", "Rejoined a category"
        FREQUENCY_SET = "frequency_set", "Weekly limit set"
        PAUSED = "paused", "Paused messages"
        RESUMED = "resumed", "Resumed messages"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="preference_evidence")
    action = models.CharField(max_length=24, choices=Action.choices)
    value = models.CharField(max_length=64, blank=True, help_text="e.g. the category, the weekly limit, the date.")
    method = models.CharField(max_length=24, default="preference_centre")
    occurred_at = models.DateTimeField()
    url = models.CharField(max_length=500, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    source_reference = models.CharField(max_length=200, blank=True, help_text="e.g. campaign:4 delivery:123")

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["customer", "occurred_at"])]
        verbose_name_plural = "preference evidence"

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.value}".strip()



class DisclosureText(models.Model):
    """The exact words shown when consent was asked; versioned and hashed, never edited."""

    channel = models.CharField(max_length=8, choices=Channel.choices)
    locale = models.CharField(max_length=16, default="en")
    version = models.PositiveIntegerField()
    text = models.TextField()
    sha256 = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "locale", "version"], name="disclosure_version_unique")
        ]
        ordering = ["channel", "locale", "-version"]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} disclosure v{self.version} ({self.locale})"


class ConsentMethod(models.TextChoices):
    CHECKOUT = "checkout", "Store checkout"
    WEB_FORM = "web_form", "Web form"
    IMPORT = "import", "Import"
    API = "api", "API"
    ADMIN = "admin", "Admin (marketing staff)"
    EMAIL_CONFIRMATION = "email_confirmation", "Email confirmation link"
    SMS_KEYWORD = "sms_keyword", "SMS keyword"
    ONE_CLICK = "one_click", "One-click unsubscribe"
    ESP_UNSUBSCRIBE = "esp_unsubscribe", "Unsubscribed at the email provider"
    PREFERENCE_CENTRE = "preference_centre", "Preference centre"
    COMPLAINT = "complaint", "Spam complaint"
    BOUNCE = "bounce", "Bounce"
    MERGE = "merge", "Profile merge"
    ERASURE = "erasure", "Erasure"


class ConsentEvidence(AppendOnlyModel):
    """One append-only line of the consent ledger: who agreed to (or withdrew) what, when, how, where."""

    append_only_name = "Consent evidence"

    class Action(models.TextChoices):
        GRANT = "grant", "Granted"
        CONFIRM = "confirm", "Confirmed (double opt-in)"
        WITHDRAW = "withdraw", "Withdrawn"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="consent_evidence")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    purpose = models.CharField(max_length=32, default="marketing")
    action = models.CharField(max_length=16, choices=Action.choices)
    method = models.CharField(max_length=24, choices=ConsentMethod.choices)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    address = models.CharField(max_length=320, blank=True, help_text="The email or phone the consent covers.")
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    collected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    disclosure = models.ForeignKey(DisclosureText, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    disclosure_sha256 = models.CharField(max_length=64, blank=True)
    url = models.CharField(max_length=500, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    basis = models.CharField(max_length=500, blank=True, help_text="Stated legal basis, for imports and admin.")
    source_reference = models.CharField(max_length=200, blank=True, help_text="e.g. delivery:123, import:7 row 12")
    note = models.CharField(max_length=500, blank=True)

    objects = ConsentEvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["customer", "channel", "occurred_at"])]
        verbose_name_plural = "consent evidence"

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.get_action_display().lower()} via {self.get_method_display()}"



class ConsentStatus(models.TextChoices):
    NONE = "none", "Not asked"
    PENDING = "pending", "Pending confirmation"
    GRANTED = "granted", "Granted"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ConsentState(models.Model):
    """The current consent per (customer, channel): a cache of the ledger, moved only by services."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_states")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=ConsentStatus.choices, default=ConsentStatus.NONE)
    granted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    last_evidence = models.ForeignKey(ConsentEvidence, null=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "channel"], name="consent_state_unique")]
        indexes = [
            models.Index(fields=["channel", "status"]),
            # Who may be sent on a channel, in customer order, from the index alone: a launch or a segment
            # count merges it with the customers (1 M customers: 70 ms instead of 255 ms for email).
            models.Index(
                fields=["channel", "customer"],
                name="consent_granted_by_channel",
                condition=models.Q(status=ConsentStatus.GRANTED),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.get_status_display()}"


class ConsentConfirmation(models.Model):
    """The double opt-in email for one pending grant; its status makes sending it idempotent."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CONFIRMED = "confirmed", "Confirmed"

    grant = models.OneToOneField(ConsentEvidence, on_delete=models.PROTECT, related_name="confirmation")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_confirmations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"Confirmation for grant {self.grant_id}: {self.status}"


class Suppression(models.Model):
    """An address we must never message, keyed by a keyed hash so it outlives erasure."""

    class Reason(models.TextChoices):
        ERASURE = "erasure", "Erased on request"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        CARRIER_OPT_OUT = "carrier_opt_out", "Opted out at the carrier"
        MANUAL = "manual", "Added by staff"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    address_hmac = models.CharField(max_length=64)
    reason = models.CharField(max_length=24, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "address_hmac"], name="suppression_unique_address")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} suppressed ({self.get_reason_display()})"


class ProductCategory(models.Model):
    """What a purchase contained, in the retailer's own words (e.g. Shampoo, Coffee beans), for journeys
    that start on a purchase of a category or when what was bought usually runs out."""

    name = models.CharField(max_length=80, help_text="As clerks and shops name it, e.g. Shampoo.")
    replenish_after_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        verbose_name="runs out after (days)",
        help_text="How many days after buying it a customer usually runs out; empty: no replenishment reminder.",
    )
    is_active = models.BooleanField(default=True, help_text="Offered at the till and in journeys.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "product categories"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="product_category_name_unique")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = " ".join((self.name or "").split())  # "Coffee  beans " is "Coffee beans"


class Purchase(models.Model):
    class Channel(models.TextChoices):
        STORE = "store", "In store"
        ONLINE = "online", "Online"

    class Source(models.TextChoices):
        TILL = "till", "Till (clerk page)"
        ONLINE_SHOP = "online_shop", "Online shop"
        IMPORT = "import", "Import"
        API = "api", "API"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="purchases")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="purchases")
    source = models.CharField(max_length=16, choices=Source.choices)
    external_ref = models.CharField(max_length=100, help_text="Order or receipt number, unique per source.")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    discount_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="USD")
    occurred_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    categories = models.ManyToManyField(
        ProductCategory, through="PurchaseCategory", related_name="purchases", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_ref"], name="purchase_ref_unique_per_source"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="purchase_amount_not_negative"),
            models.CheckConstraint(
                condition=models.Q(channel="online") | models.Q(store__isnull=False),
                name="purchase_in_store_has_store",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "occurred_at"]),
            # The replenishment trigger reads one local day of purchases, N days back, at a time.
            models.Index(fields=["occurred_at"], name="purchase_occurred_at"),
        ]
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} ({self.external_ref})"


class PurchaseCategory(models.Model):
    """One category a purchase contained (no quantities or lines: what was bought, not how much)."""

    # No index of their own: the unique pair leads with the purchase, the index below with the category.
    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="+", db_index=False)
    category = models.ForeignKey(ProductCategory, on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["purchase", "category"], name="purchase_category_unique"),
        ]
        indexes = [models.Index(fields=["category", "purchase"], name="purchase_category_by_category")]

    def __str__(self) -> str:
        return f"{self.purchase_id} · {self.category_id}"


class MergeProposal(models.Model):
    """Two profiles that one capture showed to be the same person (email on one, phone on the other)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MERGED = "merged", "Merged"
        DISMISSED = "dismissed", "Dismissed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "other"],
                condition=models.Q(status="open"),
                name="merge_proposal_open_unique",
            )
        ]

    def __str__(self) -> str:
        return f"Merge {self.customer} with {self.other}? ({self.status})"


class CustomerImport(models.Model):
    """One CSV upload: the dry-run report, then the real run with its progress."""

    class Status(models.TextChoices):
        VALIDATED = "validated", "Checked (dry run)"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    file_name = models.CharField(max_length=255)
    content = models.TextField(help_text="The uploaded CSV until it is imported (cleared afterwards).")
    content_sha256 = models.CharField(max_length=64)
    consent_basis = models.CharField(max_length=500, blank=True)
    phone_region = models.CharField(
        max_length=2,
        blank=True,
        help_text="Country whose local phone numbers the file holds, e.g. GB; blank: each row's home store's.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALIDATED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    changes = models.JSONField(
        default=list,
        blank=True,
        help_text="The dry run's field-by-field changes per row (cleared with the file once imported).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the run; a stale one is re-driven."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.file_name} ({self.get_status_display()})"


class SurveyResponse(models.Model):
    """A customer's answer to the short satisfaction survey (NPS: 0-10) a message's link carried.

    ``source`` names what carried the link as data (``campaign:4 delivery:123``): customers knows
    nothing of campaigns. One answer per customer and source; answering again within the edit window
    updates it.
    """

    MAX_COMMENT = 1000

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="survey_responses")
    source = models.CharField(max_length=200, help_text="What carried the survey link, e.g. campaign:4 delivery:123")
    score = models.PositiveSmallIntegerField(help_text="How likely to recommend us, 0 (not at all) to 10.")
    comment = models.TextField(max_length=MAX_COMMENT, blank=True)
    answered_at = models.DateTimeField(help_text="The latest answer.")
    first_answered_at = models.DateTimeField(help_text="The first answer; the edit window runs from it.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "source"], name="survey_response_once_per_source"),
            models.CheckConstraint(condition=models.Q(score__lte=10), name="survey_score_at_most_10"),
        ]
        indexes = [models.Index(fields=["answered_at"])]

    def __str__(self) -> str:
        return f"Score {self.score} ({self.source or 'no source'})"


class ApiKey(models.Model):
    """A key an outside system (an online shop, a till) sends its orders with.

    Only a hash of the secret is kept: the full key is shown once, when it is made. The prefix is
    stored in clear so staff can tell keys apart and the look-up is one indexed read.
    """

    name = models.CharField(max_length=100, help_text="Who uses this key, e.g. Online shop (production).")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class PurchaseImport(models.Model):
    """One CSV of past orders: the dry run's verdict per row, then the applied run's."""

    class Status(models.TextChoices):
        CHECKED = "checked", "Checked (dry run)"
        APPLYING = "applying", "Importing"
        DONE = "done", "Done"

    file_name = models.CharField(max_length=255)
    content = models.TextField(help_text="The uploaded CSV until it is imported (cleared afterwards).")
    content_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CHECKED)
    total_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    refused_count = models.PositiveIntegerField(default=0)
    rows = models.JSONField(
        default=list, blank=True, help_text="Per row: line, order number, outcome (create, skip, refuse), reason."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Purchase import {self.pk} of {self.file_name} ({self.get_status_display()})"
