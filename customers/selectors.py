"""Reads of customer data; nothing here writes."""

from __future__ import annotations

import dataclasses
from datetime import datetime
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
    purchases = Purchase.objects.filter(customer_id__in=ids).select_related("store")
    purchase_entries = (
        TimelineEntry(
            at=purchase.occurred_at,
            kind="purchase",
            title=f"Purchase {purchase.amount} {purchase.currency} "
            + (f"at {purchase.store.name}" if purchase.store else "online"),
            details={"Reference": purchase.external_ref, "Source": purchase.get_source_display()},
        )
        for purchase in purchases
    )
    extra = (source(ids) for source in extra_sources)
    entries = list(chain(consent_entries, purchase_entries, *extra))
    entries.sort(key=lambda item: item.at, reverse=True)
    return entries


def customer_export_data(customer: Customer) -> dict:
    """Everything we hold about one person, as JSON-ready data (the right of access)."""
    ids = customer_profile_ids(customer)
    return {
        "profile": {
            "id": str(customer.public_id),
            "email": customer.email,
            "phone": customer.phone,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "locale": customer.locale,
            "time_zone": customer.time_zone,
            "birthday": customer.birthday.isoformat() if customer.birthday else None,
            "home_store": customer.home_store.code if customer.home_store else None,
            "source": customer.source,
            "attributes": customer.attributes,
            "created_at": customer.created_at.isoformat(),
            "updated_at": customer.updated_at.isoformat(),
        },
        "consent": consent_states_for(customer),
        "consent_evidence": [
            {
                "channel": entry.channel,
                "action": entry.action,
                "method": entry.method,
                "occurred_at": entry.occurred_at.isoformat(),
                "address": entry.address,
                "store": entry.store.code if entry.store else None,
                "disclosure_version": entry.disclosure.version if entry.disclosure else None,
                "disclosure_text": entry.disclosure.text if entry.disclosure else None,
                "disclosure_sha256": entry.disclosure_sha256 or None,
                "ip_address": entry.ip_address,
                "user_agent": entry.user_agent,
                "basis": entry.basis,
            }
            for entry in ConsentEvidence.objects.filter(customer_id__in=ids)
            .select_related("store", "disclosure")
            .order_by("occurred_at", "id")
        ],
        "purchases": [
            {
                "reference": purchase.external_ref,
                "channel": purchase.channel,
                "store": purchase.store.code if purchase.store else None,
                "amount": str(purchase.amount),
                "currency": purchase.currency,
                "occurred_at": purchase.occurred_at.isoformat(),
            }
            for purchase in Purchase.objects.filter(customer_id__in=ids).select_related("store")
        ],
    }


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
