"""Profiles: capture (one customer per email and per phone), merge, erasure, purchases."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from customers.erase_hooks import profile_erase_hooks_run
from customers.exceptions import CustomerError, InvalidContact, MergeError, PurchaseConflict
from customers.lock_objects import customers_lock, person_lock
from customers.merge_hooks import profile_merge_hooks_run
from customers.models import (
    Channel,
    ConsentEvidence,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    Customer,
    MergeProposal,
    PreferenceEvidence,
    ProductCategory,
    Purchase,
    PurchaseCategory,
    Source,
    Store,
    Suppression,
    SurveyResponse,
)
from customers.normalization import (
    address_hmac,
    normalize_email,
    normalize_name,
    normalize_phone,
    parse_amount,
    phone_sms_refusal,
    phone_time_zone,
)
from customers.selectors import suppressed_channels
from customers.services.consent import Evidence, consent_grant, consent_withdraw, suppression_add
from customers.transactions import atomic_retry

MAX_NAME_LENGTH = 100
_RESTRICTIVENESS = {
    ConsentStatus.WITHDRAWN: 0,
    ConsentStatus.PENDING: 1,
    ConsentStatus.GRANTED: 2,
}


@dataclasses.dataclass(frozen=True)
class ConsentRequest:
    """A consent the person gave (``granted=True``) or withdrew in the same capture."""

    channel: str
    granted: bool = True
    #: the disclosure text shown for this channel, when it differs from the evidence's
    disclosure: object | None = None


@dataclasses.dataclass
class CaptureResult:
    customer: Customer
    created: bool
    merge_proposal: MergeProposal | None = None
    phone_customer: Customer | None = None
    consent_entries: list[ConsentEvidence] = dataclasses.field(default_factory=list)
    suppressed: set[str] = dataclasses.field(default_factory=set)


def _clean_name(value: str | None, label: str) -> str:
    return normalize_name(value, label=label, max_length=MAX_NAME_LENGTH)


def _resolve_time_zone(customer: Customer) -> None:
    if customer.time_zone_source == Customer.TimeZoneSource.EXPLICIT and customer.time_zone:
        return
    if customer.home_store_id:
        customer.time_zone = customer.home_store.time_zone
        customer.time_zone_source = Customer.TimeZoneSource.STORE
    elif customer.phone and (zone := phone_time_zone(customer.phone)):
        customer.time_zone = zone
        customer.time_zone_source = Customer.TimeZoneSource.PHONE
    else:
        customer.time_zone = ""
        customer.time_zone_source = Customer.TimeZoneSource.DEFAULT


def customer_refresh_derived(customer: Customer) -> None:
    """Recompute the fields derived from others (address hashes, time zone) before a save."""
    customer.email_hmac = address_hmac(Channel.EMAIL, customer.email) if customer.email else ""
    customer.phone_hmac = address_hmac(Channel.SMS, customer.phone) if customer.phone else ""
    _resolve_time_zone(customer)


def customer_capture(
    *,
    email: str | None = None,
    phone: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    source: str,
    store: Store | None = None,
    clerk=None,
    locale: str | None = None,
    time_zone: str | None = None,
    birthday: date | None = None,
    attributes: dict | None = None,
    consents: list[ConsentRequest] = (),
    evidence: Evidence | None = None,
) -> CaptureResult:
    """Find the profile for an email and/or phone, or create it; update it; record consents.

    One customer per email and per phone: an existing match is updated, never duplicated (a
    concurrent capture of the same new address ends on the same row). Locks the matched profiles
    (``customers.lock_objects.person_lock``) before changing them, so concurrent captures of one person
    apply one after the other and each one's ``attributes`` keys are kept. When the email and the phone
    belong to two different profiles, the capture updates the email's profile, records SMS consent on
    the phone's profile, and opens a ``MergeProposal``. Blank fields never overwrite known ones.
    Raises ``InvalidContact`` / ``CustomerError`` before writing anything.
    """
    normalized_email = normalize_email(email) if email and email.strip() else None
    # A local number typed at a store is read in the store's country.
    region = store.country if store is not None else None
    normalized_phone = normalize_phone(phone, region=region) if phone and phone.strip() else None
    if not normalized_email and not normalized_phone:
        raise InvalidContact("Enter an email address or a phone number.")
    if source not in Source.values:
        raise CustomerError(f"Unknown source {source!r}.")
    first_name = _clean_name(first_name, "first name")
    last_name = _clean_name(last_name, "last name")
    if attributes is not None and not isinstance(attributes, dict):
        raise CustomerError("Custom attributes must be a JSON object.")
    for request in consents:
        if request.channel == Channel.EMAIL and not normalized_email and request.granted:
            raise InvalidContact("Email consent needs an email address.")
        if request.channel == Channel.SMS and not normalized_phone and request.granted:
            raise InvalidContact("SMS consent needs a phone number.")
        if request.channel == Channel.SMS and request.granted and (refusal := phone_sms_refusal(normalized_phone)):
            raise InvalidContact(refusal)
    if consents and evidence is None:
        raise CustomerError("Consent needs evidence of how it was collected.")

    for attempt in range(3):
        try:
            return _capture_once(
                email=normalized_email,
                phone=normalized_phone,
                first_name=first_name,
                last_name=last_name,
                source=source,
                store=store,
                clerk=clerk,
                locale=locale,
                time_zone=time_zone,
                birthday=birthday,
                attributes=attributes,
                consents=consents,
                evidence=evidence,
            )
        except IntegrityError:
            # Someone created the same email or phone between our look-up and insert: look again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@atomic_retry
def _capture_once(
    *,
    email,
    phone,
    first_name,
    last_name,
    source,
    store,
    clerk,
    locale,
    time_zone,
    birthday,
    attributes,
    consents,
    evidence,
) -> CaptureResult:
    # The home store comes along: deriving the time zone reads it on every save.
    found = Customer.objects.select_related("home_store")
    by_email = found.with_email(email).first() if email else None
    by_phone = found.with_phone(phone).first() if phone else None
    # Everything below is decided on the rows as they are under the lock (another capture, edit or
    # merge of the same person may have committed while we waited), and on the surviving profiles.
    by_email, by_phone = person_lock(by_email, by_phone)
    if by_email is not None and by_email.erased_at:
        by_email = None
    if by_phone is not None and by_phone.erased_at:
        by_phone = None

    customer = by_email or by_phone
    created = customer is None
    proposal = None
    phone_customer = None
    if created:
        customer = Customer(
            source=source,
            source_store=store,
            source_clerk=clerk,
            home_store=store,
        )
    if email and not customer.email:
        customer.email = email
    if phone and not customer.phone and (by_phone is None or by_phone.pk == customer.pk):
        customer.phone = phone
    if by_email and by_phone and by_email.pk != by_phone.pk:
        phone_customer = by_phone
    customer.first_name = first_name or customer.first_name
    customer.last_name = last_name or customer.last_name
    if locale:
        customer.locale = locale[:16]
    if time_zone:
        from customers.models import validate_time_zone

        try:
            validate_time_zone(time_zone)
        except Exception as exc:
            raise CustomerError(f"{time_zone!r} is not a time zone.") from exc
        customer.time_zone, customer.time_zone_source = time_zone, Customer.TimeZoneSource.EXPLICIT
    if birthday:
        customer.birthday = birthday
    if attributes:
        customer.attributes = {**(customer.attributes or {}), **attributes}
    if customer.home_store_id is None and store is not None:
        customer.home_store = store
    customer_refresh_derived(customer)
    customer.save()

    if phone_customer is not None:
        proposal = _merge_propose(customer, phone_customer, store=store, user=clerk)

    entries = []
    for request in consents:
        target = phone_customer if (request.channel == Channel.SMS and phone_customer) else customer
        shown = dataclasses.replace(evidence, disclosure=request.disclosure) if request.disclosure else evidence
        if request.granted:
            entries.append(consent_grant(customer=target, channel=request.channel, evidence=shown))
        else:
            entries.append(consent_withdraw(customer=target, channel=request.channel, evidence=shown))
    return CaptureResult(
        customer=customer,
        created=created,
        merge_proposal=proposal,
        phone_customer=phone_customer,
        consent_entries=entries,
        suppressed=suppressed_channels(customer),
    )


def _merge_propose(customer: Customer, other: Customer, *, store, user) -> MergeProposal:
    first, second = sorted((customer, other), key=lambda c: c.pk)
    proposal, _ = MergeProposal.objects.get_or_create(
        customer=first,
        other=second,
        status=MergeProposal.Status.OPEN,
        defaults={
            "reason": "One capture gave an email of one profile and a phone of the other.",
            "store": store,
            "proposed_by": user,
        },
    )
    return proposal


@atomic_retry
def customer_merge(*, survivor: Customer, other: Customer, user) -> Customer:
    """Merge ``other`` into ``survivor``: history moves or stays linked, the most restrictive consent wins.

    Purchases and survey answers move to the survivor; the other profile's consent ledger stays on it (append-only) and
    is shown in the survivor's timeline through ``merged_into``. For each channel the survivor ends
    with the most restrictive of the two explicit states (a channel never asked on one side takes the
    other side's state). Missing contact details and names are filled from the other profile. The
    person's own limits hold on the survivor: the lower weekly limit, the later pause, every category left.
    Locks both profiles in primary-key order, then (through the loyalty hook) their accounts, as in
    ``customers.lock_objects``; a lock conflict is retried. Raises ``MergeError`` for a profile merged
    or erased, which is also what the second of two concurrent merges of the same pair gets.
    """
    if survivor.pk == other.pk:
        raise MergeError("A profile cannot be merged with itself.")
    locked = customers_lock([survivor.pk, other.pk])
    survivor, other = locked[survivor.pk], locked[other.pk]
    if not survivor.is_active_profile or not other.is_active_profile:
        raise MergeError("Only active profiles can be merged (one was merged or erased already).")

    reference = f"merge:{other.public_id}"
    states = {
        (state.customer_id, state.channel): state
        for state in ConsentState.objects.filter(customer__in=[survivor, other])
    }
    # Move contact details first so the consent records below carry the right address.
    moved_email = moved_phone = None
    if not survivor.email and other.email:
        moved_email, other.email = other.email, None
    if not survivor.phone and other.phone:
        moved_phone, other.phone = other.phone, None
    other.merged_into = survivor
    customer_refresh_derived(other)
    other.save()
    survivor.email = survivor.email or moved_email
    survivor.phone = survivor.phone or moved_phone
    survivor.first_name = survivor.first_name or other.first_name
    survivor.last_name = survivor.last_name or other.last_name
    survivor.birthday = survivor.birthday or other.birthday
    survivor.home_store = survivor.home_store or other.home_store
    survivor.attributes = {**(other.attributes or {}), **(survivor.attributes or {})}
    _own_limits_merge(survivor, other)
    customer_refresh_derived(survivor)
    survivor.save()

    for channel in Channel.values:
        mine = states.get((survivor.pk, channel))
        theirs = states.get((other.pk, channel))
        explicit = [s for s in (mine, theirs) if s is not None and s.status != ConsentStatus.NONE]
        if not explicit:
            continue
        winner = min(explicit, key=lambda s: _RESTRICTIVENESS[s.status])
        current = mine.status if mine else ConsentStatus.NONE
        if winner.status == current:
            continue
        evidence = Evidence(
            method=ConsentMethod.MERGE,
            collected_by=user,
            source_reference=reference,
            note=f"Most restrictive consent of the merged profiles (evidence {winner.last_evidence_id}).",
        )
        if winner.status == ConsentStatus.WITHDRAWN:
            consent_withdraw(customer=survivor, channel=channel, evidence=evidence)
        elif winner.status in (ConsentStatus.GRANTED, ConsentStatus.PENDING):
            if channel in (Channel.EMAIL, Channel.SMS) and not (
                survivor.email if channel == Channel.EMAIL else survivor.phone
            ):
                continue
            # Still unconfirmed on one side: the survivor stays unconfirmed and is asked to confirm.
            consent_grant(
                customer=survivor,
                channel=channel,
                evidence=evidence,
                reconfirm=winner.status == ConsentStatus.PENDING,
            )

    Purchase.objects.filter(customer=other).update(customer=survivor)
    _survey_answers_merge(survivor, other)
    MergeProposal.objects.filter(
        status=MergeProposal.Status.OPEN, customer__in=[survivor, other], other__in=[survivor, other]
    ).update(status=MergeProposal.Status.MERGED, resolved_at=timezone.now(), resolved_by=user)
    profile_merge_hooks_run(survivor=survivor, other=other, user=user)
    return survivor


def _own_limits_merge(survivor: Customer, other: Customer) -> None:
    """The person's own choices on either profile keep holding: the lower weekly limit, the later pause,
    and every category left (rows are added; the other profile's stay as its history)."""
    from customers.models import CategoryOptOut

    limits = [n for n in (survivor.max_messages_per_week, other.max_messages_per_week) if n is not None]
    survivor.max_messages_per_week = min(limits) if limits else None
    pauses = [t for t in (survivor.messages_paused_until, other.messages_paused_until) if t is not None]
    survivor.messages_paused_until = max(pauses) if pauses else None
    left = set(CategoryOptOut.objects.filter(customer=other).values_list("category", flat=True))
    left -= set(CategoryOptOut.objects.filter(customer=survivor).values_list("category", flat=True))
    CategoryOptOut.objects.bulk_create(CategoryOptOut(customer=survivor, category=c) for c in sorted(left))


def _survey_answers_merge(survivor: Customer, other: Customer) -> None:
    """The other profile's survey answers move to the survivor, one answer per source as for one person:
    when both answered the same survey, the later answer is kept, as answering again would have done."""
    mine = {answer.source: answer for answer in SurveyResponse.objects.filter(customer=survivor)}
    for answer in SurveyResponse.objects.filter(customer=other).order_by("pk"):
        kept = mine.get(answer.source)
        if kept is None:
            answer.customer = survivor
            answer.save(update_fields=["customer"])
            continue
        if answer.answered_at > kept.answered_at:
            kept.score, kept.comment, kept.answered_at = answer.score, answer.comment, answer.answered_at
        kept.first_answered_at = min(kept.first_answered_at, answer.first_answered_at)
        kept.save(update_fields=["score", "comment", "answered_at", "first_answered_at"])
        answer.delete()


def merge_proposal_dismiss(*, proposal: MergeProposal, user) -> None:
    """Mark a proposal as not the same person; nothing else changes."""
    if proposal.status != MergeProposal.Status.OPEN:
        raise MergeError("This proposal is already resolved.")
    proposal.status = MergeProposal.Status.DISMISSED
    proposal.resolved_at = timezone.now()
    proposal.resolved_by = user
    proposal.save(update_fields=["status", "resolved_at", "resolved_by"])


@atomic_retry
def customer_erase(*, customer: Customer, user) -> Customer:
    """Erase a person: pseudonymise the profile, keep the suppression hashes and the aggregates.

    Every channel is withdrawn (method=erasure), email and phone are suppressed by HMAC so a later
    import cannot message them again, names, birthday, attributes and the web evidence (IP, user agent,
    address) are blanked, and the public id is rotated so old links resolve to nothing. Purchases and
    ledger amounts stay, attached to the pseudonymous profile. Idempotent.
    """
    customer = customers_lock([customer.pk])[customer.pk]
    if customer.erased_at:
        return customer
    for channel in Channel.values:
        consent_withdraw(
            customer=customer, channel=channel, evidence=Evidence(method=ConsentMethod.ERASURE, collected_by=user)
        )
    if customer.email:
        suppression_add(channel=Channel.EMAIL, address=customer.email, reason=Suppression.Reason.ERASURE, user=user)
    if customer.phone:
        suppression_add(channel=Channel.SMS, address=customer.phone, reason=Suppression.Reason.ERASURE, user=user)
    ConsentEvidence.objects.filter(customer=customer).update(ip_address=None, user_agent="", address="", url="")
    PreferenceEvidence.objects.filter(customer=customer).update(ip_address=None, user_agent="", url="")
    SurveyResponse.objects.filter(customer=customer).update(comment="")  # free text may name the person
    customer.email = None
    customer.phone = None
    customer.first_name = ""
    customer.last_name = ""
    customer.birthday = None
    customer.attributes = {}
    customer.time_zone_source = Customer.TimeZoneSource.DEFAULT
    customer.public_id = uuid.uuid4()
    customer.erased_at = timezone.now()
    customer.save()  # email_hmac / phone_hmac keep the keyed hashes for aggregate reporting
    MergeProposal.objects.filter(Q(customer=customer) | Q(other=customer), status=MergeProposal.Status.OPEN).update(
        status=MergeProposal.Status.DISMISSED, resolved_at=timezone.now(), resolved_by=user
    )
    # The admin's change history names the person in each entry; it must not outlive the erasure.
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
    ).update(object_repr=str(customer))
    profile_erase_hooks_run(customer=customer, user=user)
    return customer


MAX_PURCHASE_AMOUNT = Decimal("1000000")


def _clean_amount(value, label: str) -> Decimal:
    amount = parse_amount(value, label=label)
    if amount < 0:
        raise CustomerError(f"The {label} cannot be negative.")
    if amount >= MAX_PURCHASE_AMOUNT:
        raise CustomerError(f"The {label} is implausibly large.")
    if amount != amount.quantize(Decimal("0.01")):
        raise CustomerError(f"The {label} has more than two decimals.")
    return amount


MAX_CATEGORIES_PER_PURCHASE = 50


def product_categories_clean(values: Iterable[ProductCategory | str]) -> list[ProductCategory]:
    """The categories named by ``values`` (categories, or names matched ignoring case and surrounding
    spaces, as an API or an import sends them), without repeats, in name order.

    One query. Raises ``CustomerError`` naming every unknown name, or for more than
    ``MAX_CATEGORIES_PER_PURCHASE``; a category no longer active is still known (older receipts).
    """
    values = list(values or ())
    given = {value.pk: value for value in values if isinstance(value, ProductCategory)}
    names = {}
    for value in values:
        if isinstance(value, ProductCategory):
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise CustomerError("Each product category is given by its name.")
        names.setdefault(value.strip().casefold(), value.strip())
    if len(given) + len(names) > MAX_CATEGORIES_PER_PURCHASE:
        raise CustomerError(f"A purchase has at most {MAX_CATEGORIES_PER_PURCHASE} product categories.")
    if names:
        # A shop has tens of categories, not thousands: matched here, so case folds alike on every database.
        found = {category.name.strip().casefold(): category for category in ProductCategory.objects.all()}
        found = {key: category for key, category in found.items() if key in names}
        unknown = [shown for lowered, shown in names.items() if lowered not in found]
        if unknown:
            listed = ", ".join(repr(name) for name in sorted(unknown))
            raise CustomerError(f"Unknown product categor{'y' if len(unknown) == 1 else 'ies'}: {listed}.")
        given.update((category.pk, category) for category in found.values())
    return sorted(given.values(), key=lambda category: (category.name.lower(), category.pk))


@atomic_retry
def purchase_record(
    *,
    customer: Customer | None,
    channel: str,
    source: str,
    external_ref: str,
    amount,
    currency: str = "USD",
    occurred_at: datetime | None = None,
    store: Store | None = None,
    recorded_by=None,
    discount_amount=0,
    categories: Iterable[ProductCategory | str] = (),
) -> tuple[Purchase, bool]:
    """Record a purchase or visit once per (source, external reference); returns (purchase, created).

    Repeating the same reference returns the first record unchanged (idempotent), also to a repeat
    sent while the first was still in flight, or raises ``PurchaseConflict`` when it disagrees on amount,
    customer or (when the repeat names any) product categories. A purchase of a profile merged away is
    recorded on the surviving profile. Locks the person first (``person_lock``), so a purchase racing
    a merge lands on the survivor or moves with the merge, never in between; a lock conflict is
    retried. Refuses negative, absurd or over-precise amounts, an in-store purchase without a store,
    and unknown product categories (``product_categories_clean``), before writing anything.
    """
    external_ref = (external_ref or "").strip()
    if not external_ref or len(external_ref) > 100 or "\x00" in external_ref:
        raise CustomerError("Give an order or receipt number of at most 100 characters.")
    if channel not in Purchase.Channel.values:
        raise CustomerError(f"Unknown purchase channel {channel!r}.")
    if source not in Purchase.Source.values:
        raise CustomerError(f"Unknown purchase source {source!r}.")
    if channel == Purchase.Channel.STORE and store is None:
        raise CustomerError("An in-store purchase needs its store.")
    amount = _clean_amount(amount, "amount")
    discount = _clean_amount(discount_amount, "discount")
    if discount > amount:
        raise CustomerError("The discount cannot exceed the amount.")
    currency = (currency or "").upper()
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        raise CustomerError("The currency must be a three-letter code such as USD.")
    bought = product_categories_clean(categories)
    if customer is not None:
        (customer,) = person_lock(customer)
    # Looked up under the person's lock: a repeat of a receipt still being recorded waits for it here
    # and then answers like a repeat, not like a new purchase.
    existing = Purchase.objects.filter(source=source, external_ref=external_ref).first()
    if existing is None:
        try:
            with transaction.atomic():
                purchase = Purchase.objects.create(
                    customer=customer,
                    channel=channel,
                    store=store,
                    source=source,
                    external_ref=external_ref,
                    amount=amount,
                    discount_amount=discount,
                    currency=currency,
                    occurred_at=occurred_at or timezone.now(),
                    recorded_by=recorded_by,
                )
                PurchaseCategory.objects.bulk_create(
                    [PurchaseCategory(purchase=purchase, category=category) for category in bought]
                )
            return purchase, True
        except IntegrityError:
            # The same receipt was recorded concurrently: answer as for a repeat.
            existing = Purchase.objects.get(source=source, external_ref=external_ref)
    if existing.amount != amount or _survivor_id(existing.customer_id) != (customer.pk if customer else None):
        raise PurchaseConflict(f"Receipt {external_ref} was already recorded with other details.")
    if bought and {category.pk for category in bought} != set(
        PurchaseCategory.objects.filter(purchase=existing).values_list("category_id", flat=True)
    ):
        raise PurchaseConflict(f"Receipt {external_ref} was already recorded with other product categories.")
    return existing, False


def _survivor_id(customer_id: int | None) -> int | None:
    """The pk of the profile that ``customer_id`` survives as now (itself unless merged away)."""
    seen = set()
    while customer_id is not None and customer_id not in seen:
        seen.add(customer_id)
        merged_into = Customer.objects.filter(pk=customer_id).values_list("merged_into_id", flat=True).first()
        if merged_into is None:
            break
        customer_id = merged_into
    return customer_id
