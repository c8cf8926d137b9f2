"""Reads of customer data; nothing here writes."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from itertools import chain

from django.db.models import Q

from customers.models import (
    Channel,
    ConsentEvidence,
    ConsentState,
    ConsentStatus,
    Customer,
    DisclosureText,
    Purchase,
    StoreMembership,
    Suppression,
)
from customers.normalization import address_hmac


def disclosure_current(*, channel: str, locale: str = "en") -> DisclosureText | None:
    """The newest disclosure text for a channel, in the locale when there is one, else in English."""
    texts = DisclosureText.objects.filter(channel=channel).order_by("-version")
    return texts.filter(locale=locale).first() or texts.filter(locale="en").first()


def address_is_suppressed(*, channel: str, address: str) -> bool:
    return Suppression.objects.filter(channel=channel, address_hmac=address_hmac(channel, address)).exists()


def suppressed_channels(customer: Customer) -> set[str]:
    """Channels on which the customer's current address is on the suppression list."""
    wanted = Q(pk__in=[])
    if customer.email_hmac:
        wanted |= Q(channel=Channel.EMAIL, address_hmac=customer.email_hmac)
    if customer.phone_hmac:
        wanted |= Q(channel=Channel.SMS, address_hmac=customer.phone_hmac)
    return set(Suppression.objects.filter(wanted).values_list("channel", flat=True))


def consent_states_for(customer: Customer) -> dict[str, str]:
    """Current status per channel, ``none`` where the customer was never asked."""
    states = dict.fromkeys(Channel.values, ConsentStatus.NONE)
    states.update(dict(ConsentState.objects.filter(customer=customer).values_list("channel", "status")))
    return states


def customer_is_reachable(*, customer: Customer, channel: str) -> bool:
    """Consent granted (confirmed where double opt-in applies) and the address not suppressed."""
    if not customer.is_active_profile:
        return False
    granted = ConsentState.objects.filter(customer=customer, channel=channel, status=ConsentStatus.GRANTED).exists()
    return granted and channel not in suppressed_channels(customer)


def customer_find_by_contact(*, email: str | None = None, phone: str | None = None) -> Customer | None:
    """The surviving active profile holding an already-normalised email or phone."""
    candidates = []
    if email:
        candidates.append(Customer.objects.with_email(email).first())
    if phone:
        candidates.append(Customer.objects.with_phone(phone).first())
    for candidate in candidates:
        while candidate is not None and candidate.merged_into_id:
            candidate = candidate.merged_into
        if candidate is not None and candidate.erased_at is None:
            return candidate
    return None


def stores_for_user(user):
    """Stores whose till pages ``user`` may use."""
    from customers.models import Store

    if not user.is_authenticated:
        return Store.objects.none()
    return Store.objects.filter(memberships__user=user, is_active=True).distinct().order_by("name")


def user_is_store_staff(user) -> bool:
    return user.is_authenticated and StoreMembership.objects.filter(user=user).exists()


@dataclasses.dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    title: str
    details: dict


def customer_profile_ids(customer: Customer) -> list[int]:
    """The customer's id and the ids of every profile merged into it, recursively."""
    ids, frontier = [customer.pk], [customer.pk]
    while frontier:
        frontier = list(Customer.objects.filter(merged_into__in=frontier).values_list("pk", flat=True))
        ids.extend(frontier)
    return ids


def customer_timeline(customer: Customer, *, extra_sources=()) -> list[TimelineEntry]:
    """Consent evidence and purchases of the profile (and profiles merged into it), newest first.

    ``extra_sources`` are callables ``(profile_ids) -> iterable[TimelineEntry]`` that apps above
    customers (loyalty, campaigns) register, so the timeline grows without customers importing them.
    """
    ids = customer_profile_ids(customer)
    evidence = ConsentEvidence.objects.filter(customer_id__in=ids).select_related("store", "collected_by", "disclosure")
    consent_entries = (
        TimelineEntry(
            at=entry.occurred_at,
            kind="consent",
            title=f"{entry.get_channel_display()} consent {entry.get_action_display().lower()}",
            details={
                "Method": entry.get_method_display(),
                "Address": entry.address,
                "Store": str(entry.store) if entry.store else "",
                "Collected by": entry.collected_by.get_username() if entry.collected_by else "",
                "Disclosure": (
                    f"v{entry.disclosure.version} sha256 {entry.disclosure_sha256[:12]}…" if entry.disclosure else ""
                ),
                "Basis": entry.basis,
                "IP": entry.ip_address or "",
                "User agent": entry.user_agent,
                "URL": entry.url,
                "Reference": entry.source_reference,
                "Note": entry.note,
                "Profile": "" if entry.customer_id == customer.pk else f"merged profile #{entry.customer_id}",
            },
        )
        for entry in evidence
    )
    purchases = Purchase.objects.filter(customer_id__in=ids).select_related("store").prefetch_related("categories")
    purchase_entries = (
        TimelineEntry(
            at=purchase.occurred_at,
            kind="purchase",
            title=f"Purchase {purchase.amount} {purchase.currency} "
            + (f"at {purchase.store.name}" if purchase.store else "online"),
            details={
                "Categories": ", ".join(category.name for category in purchase.categories.all()),
                "Reference": purchase.external_ref,
                "Source": purchase.get_source_display(),
            },
        )
        for purchase in purchases
    )
    extra = (source(ids) for source in extra_sources)
    entries = list(chain(consent_entries, purchase_entries, *extra))
    entries.sort(key=lambda item: item.at, reverse=True)
    return entries


TIMELINE_KIND_LABELS = {
    "consent": "Consent",
    "purchase": "Purchases",
    "loyalty": "Loyalty points",
    "redemption": "Redemptions",
    "delivery": "Messages",
}


def timeline_kinds(entries: list[TimelineEntry]) -> list[tuple[str, str, int]]:
    """(kind, label, count) for the kinds present in a timeline, in a fixed order, for its filter."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    order = list(TIMELINE_KIND_LABELS)
    kinds = sorted(counts, key=lambda kind: (order.index(kind) if kind in order else len(order), kind))
    return [(kind, TIMELINE_KIND_LABELS.get(kind, kind.replace("_", " ").capitalize()), counts[kind]) for kind in kinds]


@dataclasses.dataclass(frozen=True)
class ConsentAtAGlance:
    channel: str
    label: str
    status: str
    status_label: str
    #: when the current status began: granted (or asked, when pending) or withdrawn
    since: datetime | None
    confirmed_at: datetime | None
    method: str
    store: str
    address: str
    suppressed: bool


@dataclasses.dataclass(frozen=True)
class CustomerSummary:
    """What the 360° header answers at a glance; ``panels`` come from apps above customers."""

    consents: list[ConsentAtAGlance]
    paused_until: datetime | None
    weekly_limit: int | None
    categories_left: list[str]
    last_online: Purchase | None
    last_in_store: Purchase | None
    purchase_count: int
    #: (currency, purchases minus refunds) per currency
    lifetime_value: list[tuple[str, Decimal]]
    refunded_count: int
    panels: list


def customer_summary(
    customer: Customer, *, profile_ids: list[int] | None = None, panel_sources=(), refund_sources=(), now=None
) -> CustomerSummary:
    """The 360° header of one customer: consent per channel with its date and method, their own
    message preferences, last purchase online and in store, lifetime value, and the panels that apps
    above customers register (``customers.header_sources``). Purchases cover merged profiles too.

    A fixed number of queries (about eight) plus what each panel source needs, whatever the history.
    """
    from django.db.models import Count, Sum
    from django.utils import timezone

    from customers.models import CategoryOptOut, MarketingCategory

    now = now or timezone.now()
    ids = profile_ids if profile_ids is not None else customer_profile_ids(customer)
    states = {
        state.channel: state
        for state in ConsentState.objects.filter(customer=customer).select_related("last_evidence__store")
    }
    suppressed = suppressed_channels(customer)
    consents = []
    for channel in Channel:
        state = states.get(channel.value)
        status = state.status if state else ConsentStatus.NONE
        evidence = state.last_evidence if state and state.last_evidence_id else None
        since = None
        if state is not None:
            since = state.withdrawn_at if status == ConsentStatus.WITHDRAWN else state.granted_at
        consents.append(
            ConsentAtAGlance(
                channel=channel.value,
                label=channel.label,
                status=status,
                status_label=ConsentStatus(status).label,
                since=since or (evidence.occurred_at if evidence else None),
                confirmed_at=state.confirmed_at if state else None,
                method=evidence.get_method_display() if evidence else "",
                store=evidence.store.name if evidence and evidence.store_id else "",
                address=evidence.address if evidence else "",
                suppressed=channel.value in suppressed,
            )
        )
    left = set(CategoryOptOut.objects.filter(customer=customer).values_list("category", flat=True))
    purchases = Purchase.objects.filter(customer_id__in=ids)
    last_online = purchases.filter(channel=Purchase.Channel.ONLINE).order_by("-occurred_at", "-id").first()
    last_in_store = (
        purchases.filter(channel=Purchase.Channel.STORE).select_related("store").order_by("-occurred_at", "-id").first()
    )
    totals = {
        row["currency"]: (row["total"], row["count"])
        for row in purchases.order_by().values("currency").annotate(total=Sum("amount"), count=Count("id"))
    }
    refunds: dict[int, Decimal] = {}
    for source in refund_sources:
        refunds.update(source(ids))
    value = {currency: total for currency, (total, _count) in totals.items()}
    if refunds:
        for pk, currency in purchases.filter(pk__in=list(refunds)).values_list("pk", "currency"):
            value[currency] = value.get(currency, Decimal(0)) - refunds[pk]
    panels = [panel for source in panel_sources if (panel := source(customer, ids)) is not None]
    paused = customer.messages_paused_until
    return CustomerSummary(
        consents=consents,
        paused_until=paused if paused and paused > now else None,
        weekly_limit=customer.max_messages_per_week,
        categories_left=[label for category, label in MarketingCategory.choices if category in left],
        last_online=last_online,
        last_in_store=last_in_store,
        purchase_count=sum(count for _total, count in totals.values()),
        lifetime_value=sorted(value.items()),
        refunded_count=len(refunds),
        panels=panels,
    )


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _profile_export(customer: Customer) -> dict:
    return {
        "id": str(customer.public_id),
        "email": customer.email,
        "phone": customer.phone,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "locale": customer.locale,
        "time_zone": customer.time_zone,
        "birthday": _iso(customer.birthday),
        "home_store": customer.home_store.code if customer.home_store else None,
        "source": customer.source,
        "source_store": customer.source_store.code if customer.source_store else None,
        "attributes": customer.attributes,
        "max_messages_per_week": customer.max_messages_per_week,
        "messages_paused_until": _iso(customer.messages_paused_until),
        "merged_into": str(customer.merged_into.public_id) if customer.merged_into_id else None,
        "erased_at": _iso(customer.erased_at),
        "created_at": _iso(customer.created_at),
        "updated_at": _iso(customer.updated_at),
    }


def customer_export_data(customer: Customer, *, extra_sources=None) -> dict:
    """Everything we hold about one person, as JSON-ready data (the right of access).

    Covers the profile and every profile merged into it. ``extra_sources`` (default: the sources
    registered in ``customers.export_sources``) add the sections of apps above customers (loyalty
    accounts, ledger and redemptions; deliveries and their events). A handful of queries per section.
    """
    from customers.export_sources import export_sources
    from customers.models import (
        CategoryOptOut,
        ConsentConfirmation,
        MergeProposal,
        PreferenceEvidence,
        SurveyResponse,
    )

    ids = customer_profile_ids(customer)
    profiles = {
        profile.pk: profile
        for profile in Customer.objects.filter(pk__in=ids).select_related("home_store", "source_store", "merged_into")
    }
    public = {pk: str(profile.public_id) for pk, profile in profiles.items()}
    states = ConsentState.objects.filter(customer_id__in=ids).select_related("last_evidence").order_by("customer_id")
    data = {
        "profile": _profile_export(profiles.get(customer.pk, customer)),
        "consent": consent_states_for(customer),
        "consent_states": [
            {
                "profile": public.get(state.customer_id),
                "channel": state.channel,
                "status": state.status,
                "granted_at": _iso(state.granted_at),
                "confirmed_at": _iso(state.confirmed_at),
                "withdrawn_at": _iso(state.withdrawn_at),
                "method": state.last_evidence.method if state.last_evidence_id else None,
            }
            for state in states
        ],
        "consent_evidence": [
            {
                "profile": public.get(entry.customer_id),
                "channel": entry.channel,
                "purpose": entry.purpose,
                "action": entry.action,
                "method": entry.method,
                "occurred_at": _iso(entry.occurred_at),
                "address": entry.address,
                "store": entry.store.code if entry.store else None,
                "disclosure_version": entry.disclosure.version if entry.disclosure else None,
                "disclosure_text": entry.disclosure.text if entry.disclosure else None,
                "disclosure_sha256": entry.disclosure_sha256 or None,
                "url": entry.url,
                "ip_address": entry.ip_address,
                "user_agent": entry.user_agent,
                "basis": entry.basis,
                "source_reference": entry.source_reference,
                "note": entry.note,
            }
            for entry in ConsentEvidence.objects.filter(customer_id__in=ids)
            .select_related("store", "disclosure")
            .order_by("occurred_at", "id")
        ],
        "consent_confirmations": [
            {
                "profile": public.get(confirmation.customer_id),
                "status": confirmation.status,
                "created_at": _iso(confirmation.created_at),
                "sent_at": _iso(confirmation.sent_at),
                "confirmed_at": _iso(confirmation.confirmed_at),
            }
            for confirmation in ConsentConfirmation.objects.filter(customer_id__in=ids).order_by("created_at", "id")
        ],
        "preference_evidence": [
            {
                "profile": public.get(entry.customer_id),
                "action": entry.action,
                "value": entry.value,
                "method": entry.method,
                "occurred_at": _iso(entry.occurred_at),
                "url": entry.url,
                "ip_address": entry.ip_address,
                "user_agent": entry.user_agent,
                "source_reference": entry.source_reference,
            }
            for entry in PreferenceEvidence.objects.filter(customer_id__in=ids).order_by("occurred_at", "id")
        ],
        "category_opt_outs": [
            {"profile": public.get(row.customer_id), "category": row.category, "created_at": _iso(row.created_at)}
            for row in CategoryOptOut.objects.filter(customer_id__in=ids).order_by("created_at", "id")
        ],
        "survey_responses": [
            {
                "profile": public.get(row.customer_id),
                "source": row.source,
                "score": row.score,
                "comment": row.comment,
                "answered_at": _iso(row.answered_at),
                "first_answered_at": _iso(row.first_answered_at),
            }
            for row in SurveyResponse.objects.filter(customer_id__in=ids).order_by("first_answered_at", "id")
        ],
        "purchases": [
            {
                "profile": public.get(purchase.customer_id),
                "reference": purchase.external_ref,
                "channel": purchase.channel,
                "source": purchase.source,
                "store": purchase.store.code if purchase.store else None,
                "amount": str(purchase.amount),
                "discount_amount": str(purchase.discount_amount),
                "currency": purchase.currency,
                "occurred_at": _iso(purchase.occurred_at),
                "categories": [category.name for category in purchase.categories.all()],
            }
            for purchase in Purchase.objects.filter(customer_id__in=ids)
            .select_related("store")
            .prefetch_related("categories")
            .order_by("occurred_at")
        ],
        "merge_history": {
            "merged_profiles": [
                {**_profile_export(profile), "merged_at_or_after": _iso(profile.updated_at)}
                for pk, profile in sorted(profiles.items())
                if pk != customer.pk
            ],
            "merge_proposals": [
                {
                    "profiles": [
                        public.get(proposal.customer_id, "another profile"),
                        public.get(proposal.other_id, "another profile"),
                    ],
                    "reason": proposal.reason,
                    "status": proposal.status,
                    "created_at": _iso(proposal.created_at),
                    "resolved_at": _iso(proposal.resolved_at),
                }
                for proposal in MergeProposal.objects.filter(Q(customer_id__in=ids) | Q(other_id__in=ids)).order_by(
                    "created_at", "id"
                )
            ],
        },
    }
    for source in export_sources() if extra_sources is None else extra_sources:
        data.update(source(ids))
    return data


def preference_page_context(*, link, customer: Customer, now: datetime | None = None) -> dict:
    """What the preference centre shows ``customer``: consent per channel, weekly limit, pause,
    the kinds of message left, and the disclosures to show for the choices that grant consent."""
    from django.conf import settings
    from django.utils import timezone

    from customers.models import CategoryOptOut, MarketingCategory

    now = now or timezone.now()
    statuses = dict(ConsentState.objects.filter(customer=customer).values_list("channel", "status"))
    left = set(CategoryOptOut.objects.filter(customer=customer).values_list("category", flat=True))
    paused_until = customer.messages_paused_until
    email = statuses.get(Channel.EMAIL, ConsentStatus.NONE)
    sms = statuses.get(Channel.SMS, ConsentStatus.NONE)
    categories = [
        {"value": value, "label": label, "left": value in left, "this_message": value == link.category}
        for value, label in MarketingCategory.choices
    ]
    categories.sort(key=lambda item: not item["this_message"])  # the kind this message was comes first
    can_text = bool(customer.phone) and sms != ConsentStatus.GRANTED
    vapid_public_key = getattr(settings, "WEBPUSH_VAPID_PUBLIC_KEY", "")
    push_disclosure = disclosure_current(channel=Channel.PUSH, locale=customer.locale) if vapid_public_key else None
    return {
        "vapid_public_key": vapid_public_key,
        "push_disclosure": push_disclosure,
        "brand": settings.TANDEM["BRAND_NAME"],
        "customer": customer,
        "email_status": email,
        "sms_status": sms,
        "email_receiving": email in (ConsentStatus.GRANTED, ConsentStatus.PENDING),
        "max_messages_per_week": customer.max_messages_per_week,
        "paused_until": paused_until if paused_until and paused_until > now else None,
        "categories": categories,
        "phone_ending": customer.phone[-2:] if customer.phone else "",
        "sms_disclosure": disclosure_current(channel=Channel.SMS, locale=customer.locale) if can_text else None,
        "email_disclosure": (
            disclosure_current(channel=Channel.EMAIL, locale=customer.locale)
            if email in (ConsentStatus.NONE, ConsentStatus.WITHDRAWN)
            else None
        ),
    }


def customer_name_words_q(term: str):
    """Every word of ``term`` that is not a number or an address found in the first or last name; ``Q()`` if none."""
    words = [word for word in term.split() if not any(char.isdigit() for char in word) and "@" not in word]
    matched = Q()
    for word in words:
        matched &= Q(first_name__icontains=word) | Q(last_name__icontains=word)
    return matched
