"""Reads for the studio: preview rendering, preview customers, personas, the audit trail."""

from __future__ import annotations

import dataclasses
import random

from django.db.models import Count, Max, Q

from campaigns.composer import variant_compiled
from campaigns.links import preview_links
from campaigns.models import AuditEvent, Segment, Variant
from campaigns.personalisation import coupon_value, loyalty_values
from campaigns.rendering import RenderError, TemplateProblem, placeholder_context
from customers.models import Customer
from customers.selectors import customer_name_words_q

PERSONA_SOFT_LIMIT = 4


@dataclasses.dataclass
class Preview:
    variant: Variant
    rendered: object | None
    error: str = ""


def customer_for_preview(*, customer_id: int | None = None) -> Customer | None:
    """The chosen active customer, or a random one (without scanning the table); ``None`` if none."""
    customers = Customer.objects.active().select_related("home_store")
    if customer_id:
        return customers.filter(pk=customer_id).first()
    top = customers.aggregate(top=Max("pk"))["top"]
    if top is None:
        return None
    pivot = random.randint(1, top)  # noqa: S311 (not security relevant)
    return customers.filter(pk__gte=pivot).order_by("pk").first() or customers.order_by("pk").first()


CUSTOMER_SEARCH_LIMIT = 10


def customers_search(*, query: str, limit: int = CUSTOMER_SEARCH_LIMIT) -> list[Customer]:
    """Active customers whose name holds every word of ``query``, whose email starts with it, or whose
    phone holds its digits (at least four); at most ``limit``, by name. One query.

    For picking a customer to preview or test with: staff type what they know about a person, never
    an internal id (a number is read as part of a phone).
    """
    term = " ".join((query or "").split())[:100]
    if len(term) < 2:
        return []
    wanted = Q()
    if " " not in term:
        wanted |= Q(email__istartswith=term)
    digits = "".join(char for char in term if char.isdigit())
    if len(digits) >= 4:
        wanted |= Q(phone__contains=digits)
    wanted |= customer_name_words_q(term)
    if not wanted:
        return []
    found = Customer.objects.active().filter(wanted).select_related("home_store")
    return list(found.order_by("first_name", "last_name", "pk")[:limit])


def customer_label(customer: Customer) -> str:
    """How a customer is named in a picker: name, then email and phone where known (plain text)."""
    name = " ".join(part for part in (customer.first_name, customer.last_name) if part) or "(no name)"
    contacts = " · ".join(part for part in (customer.email, customer.phone) if part)
    return f"{name} — {contacts}" if contacts else name


def audience_persona_counts(campaign) -> list[tuple[Segment, int]]:
    """How many of ``campaign``'s audience are in each active persona; one aggregate query."""
    from django.utils import timezone

    from campaigns.audience import audience_q, segment_member_q

    personas = list(Segment.objects.personas())
    if not personas:
        return []
    now = timezone.now()
    counts = Customer.objects.filter(audience_q(campaign, now=now)).aggregate(
        **{f"persona_{p.pk}": Count("pk", filter=segment_member_q(p, now=now)) for p in personas}
    )
    return [(persona, counts[f"persona_{persona.pk}"] or 0) for persona in personas]


def preview_context(*, customer: Customer | None, campaign=None) -> dict[str, str]:
    """Placeholder values for a preview or a test: inert links, loyalty values, the offer's code."""
    programme_id = campaign.offer.programme_id if campaign is not None and campaign.offer_id else None
    extra = {**loyalty_values(customer, programme_id=programme_id), "coupon_code": coupon_value(campaign)}
    return placeholder_context(customer=customer, links=preview_links(), extra=extra)


def variant_preview(*, variant: Variant, customer: Customer | None, campaign=None, context=None) -> Preview:
    """``variant`` as ``customer`` would see it (links inert); a customer with gaps gets the fallbacks."""
    try:
        context = context or preview_context(customer=customer, campaign=campaign)
        rendered = variant_compiled(variant).render(context)
    except (TemplateProblem, RenderError) as exc:
        return Preview(variant=variant, rendered=None, error=str(exc))
    return Preview(variant=variant, rendered=rendered)


def message_previews(*, message, customer: Customer | None, campaign=None) -> list[Preview]:
    variants = message.variants.select_related("persona").order_by("persona__name", "channel")
    context = preview_context(customer=customer, campaign=campaign)
    return [variant_preview(variant=variant, customer=customer, context=context) for variant in variants]


def personas_active_count() -> int:
    return Segment.objects.personas().count()


def persona_warning() -> str:
    count = personas_active_count()
    if count > PERSONA_SOFT_LIMIT:
        return (
            f"{count} personas are active. Keep it to {PERSONA_SOFT_LIMIT} or fewer: every persona is one more "
            "variant of every message to write and check."
        )
    return ""


def audit_for_campaign(campaign, *, limit: int = 50):
    """The campaign's own events and those of its message's variants, newest first."""
    variant_ids = list(campaign.message.variants.values_list("pk", flat=True))
    events = AuditEvent.objects.filter(campaign=campaign) | AuditEvent.objects.filter(
        subject_type="variant", subject_id__in=variant_ids
    )
    return list(events.select_related("actor").order_by("-occurred_at", "-id")[:limit])


def customer_in_segment_named(*, segment_reference: str, customer) -> bool:
    """Whether ``customer`` is in the active segment named ``segment_reference`` (for loyalty's bonus windows).

    One query. An unknown or inactive segment matches nobody, so a mistyped name never hands out
    bonus points.
    """
    from django.utils import timezone

    from campaigns.audience import segment_member_q
    from campaigns.models import Segment
    from customers.models import Customer

    if customer is None or not segment_reference:
        return False
    segment = Segment.objects.filter(name=segment_reference.strip(), is_active=True).first()
    if segment is None:
        return False
    return Customer.objects.filter(pk=customer.pk).filter(segment_member_q(segment, now=timezone.now())).exists()
