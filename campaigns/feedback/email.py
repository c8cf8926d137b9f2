"""Email tracking events from any ESP through anymail's webhooks: stored once, then acted on.

anymail validates the request (basic-auth secret, and the ESP's signature where it has one) and
normalises the event; it does not deduplicate, so the event is stored under its ESP event id (or a
stable key built from its fields when the ESP gives none) before anything else happens.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from urllib.parse import urlsplit

from django.utils import timezone

from campaigns.feedback.health import sender_health_check
from campaigns.feedback.optouts import SUPPRESSION, address_suppress, customer_opt_out
from campaigns.feedback.records import (
    DeliveryRef,
    delivery_event_store,
    delivery_first_mark,
    delivery_id_parse,
    delivery_ref_get,
    delivery_status_advance,
    feedback_count_add,
)
from campaigns.models import DeliveryEvent
from customers.exceptions import InvalidContact
from customers.models import Channel, ConsentMethod, Customer
from customers.normalization import address_hmac, normalize_email
from customers.transactions import atomic_retry

Kind = DeliveryEvent.Kind
MAX_DETAIL = 200

# anymail's normalised event types -> ours (bounced is split into hard and soft below).
_KINDS = {
    "queued": Kind.QUEUED,
    "sent": Kind.SENT,
    "deferred": Kind.DEFERRED,
    "delivered": Kind.DELIVERED,
    "rejected": Kind.REJECTED,
    "failed": Kind.FAILED,
    "bounced": Kind.BOUNCED,
    "complained": Kind.COMPLAINED,
    "opened": Kind.OPENED,
    "clicked": Kind.CLICKED,
    "unsubscribed": Kind.UNSUBSCRIBED,
}
# The provider status each kind moves a delivery to (only ever forward).
_STATUSES = {
    Kind.QUEUED: "queued",
    Kind.SENT: "sent",
    Kind.DEFERRED: "deferred",
    Kind.SOFT_BOUNCED: "deferred",
    Kind.DELIVERED: "delivered",
    Kind.REJECTED: "rejected",
    Kind.FAILED: "failed",
    Kind.BOUNCED: "bounced",
}


def _esp_field(esp_event, *path: str):
    value = esp_event
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def bounce_is_hard(*, esp_name: str, event) -> bool:
    """Whether a ``bounced`` event means the address can never receive mail.

    anymail reports Postmark SoftBounce and Amazon SES Transient/Undetermined bounces, and SendGrid
    "blocked" bounces, as ``bounced`` too; only the ESP's own event tells them apart. Mailgun's
    temporary failures already arrive as ``deferred``. Other ESPs: hard.
    """
    esp_event = event.esp_event
    if esp_name == "Postmark":  # a Bounce's Type, or why a SubscriptionChange suppressed the address
        return "HardBounce" in (_esp_field(esp_event, "Type"), _esp_field(esp_event, "SuppressionReason"))
    if esp_name == "Amazon SES":
        return _esp_field(esp_event, "bounce", "bounceType") == "Permanent"
    if esp_name == "SendGrid":
        return (_esp_field(esp_event, "type") or "bounce") == "bounce"
    return True


def _kind(*, esp_name: str, event) -> str:
    kind = _KINDS.get(event.event_type, Kind.OTHER)
    if kind == Kind.BOUNCED and not bounce_is_hard(esp_name=esp_name, event=event):
        return Kind.SOFT_BOUNCED
    if kind == Kind.REJECTED and event.reject_reason == "invalid":
        return Kind.BOUNCED  # the ESP knows the address cannot exist (Postmark BadEmailAddress)
    return kind


def _text(value) -> str:
    return str(value)[:MAX_DETAIL] if value else ""


def event_key(*, esp_name: str, event) -> str:
    """A stable key for the event: the ESP's id (per recipient: one SES notification covers several),
    else a hash of the fields that identify it (Postmark opens and clicks carry no id)."""
    recipient = (event.recipient or "").strip().lower()
    if event.event_id:
        key = f"{event.event_id}:{event.event_type}:{recipient}"
    else:
        fields = [
            event.event_type,
            event.message_id or "",
            recipient,
            event.timestamp.isoformat() if event.timestamp else "",
            event.click_url or "",
            event.user_agent or "",
        ]
        key = "h:" + hashlib.sha256(json.dumps(fields, default=str).encode()).hexdigest()
    if len(key) > 200:
        key = "h:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _detail(event, kind: str) -> dict:
    detail = {"event_type": _text(event.event_type)}
    for name in ("reject_reason", "description", "mta_response"):
        if getattr(event, name, None):
            detail[name] = _text(getattr(event, name))
    if kind == Kind.CLICKED and event.click_url:
        detail["click_host"] = _text(urlsplit(str(event.click_url)).hostname or "")
    return detail


def _recipient(event) -> str:
    try:
        return normalize_email(event.recipient or "")
    except InvalidContact:
        return ""


def _customer_id(ref: DeliveryRef | None, recipient: str) -> int | None:
    if ref is not None:
        return ref.customer_id
    if not recipient:
        return None
    return (
        Customer.objects.active()
        .filter(email_hmac=address_hmac(Channel.EMAIL, recipient))
        .values_list("pk", flat=True)
        .first()
    )


@atomic_retry
def email_event_record(*, esp_name: str, event, now: datetime | None = None) -> bool:
    """Store one normalised anymail tracking event and act on it; False for a replay (nothing changes).

    The delivery comes from ``metadata["delivery_id"]`` (an integer, for a delivery of that recipient;
    anything else and the event is kept without one). Delivered, opened and clicked mark the delivery
    (each counted once per delivery); a hard bounce suppresses the address; a complaint withdraws
    email consent and suppresses; an unsubscribe at the ESP withdraws consent. Bounces and complaints
    feed the campaign's sender health, which may pause it. Locks the customer and its consent state
    through the customers services.
    """
    now = now or timezone.now()
    kind = _kind(esp_name=esp_name, event=event)
    recipient = _recipient(event)
    ref = delivery_ref_get(delivery_id=delivery_id_parse((event.metadata or {}).get("delivery_id")), channel="email")
    if ref is not None and recipient and ref.address and ref.address.lower() != recipient.lower():
        ref = None
    stored = delivery_event_store(
        provider=esp_name.lower().replace(" ", "_"),
        provider_event_id=event_key(esp_name=esp_name, event=event),
        kind=kind,
        occurred_at=event.timestamp or now,
        delivery_id=ref.id if ref else None,
        detail=_detail(event, kind),
    )
    if stored is None:
        return False
    at = event.timestamp or now
    moved = (
        ref is not None
        and kind in _STATUSES
        and delivery_status_advance(delivery_id=ref.id, status=_STATUSES[kind], at=at)
    )
    source = f"delivery:{ref.id}" if ref else f"{stored.provider}:{stored.provider_event_id}"
    if kind == Kind.DELIVERED and moved:
        feedback_count_add(ref=ref, kind=Kind.DELIVERED)
    elif kind in (Kind.OPENED, Kind.CLICKED) and ref is not None:
        if delivery_first_mark(delivery_id=ref.id, field=f"{kind}_at", at=at):
            feedback_count_add(ref=ref, kind=kind)
    elif kind == Kind.BOUNCED:
        address_suppress(channel=Channel.EMAIL, address=recipient, reason=SUPPRESSION.HARD_BOUNCE, note=f"{esp_name}")
        if moved:
            sender_health_check(ref=ref, kind=kind, count=feedback_count_add(ref=ref, kind=kind))
    elif kind == Kind.COMPLAINED:
        customer_opt_out(
            customer_id=_customer_id(ref, recipient),
            channel=Channel.EMAIL,
            method=ConsentMethod.COMPLAINT,
            source_reference=source,
            note=f"Marked as spam (reported by {esp_name}).",
            occurred_at=at,
        )
        address_suppress(channel=Channel.EMAIL, address=recipient, reason=SUPPRESSION.COMPLAINT, note=esp_name)
        if ref is not None and delivery_first_mark(delivery_id=ref.id, field="complained_at", at=at):
            sender_health_check(ref=ref, kind=kind, count=feedback_count_add(ref=ref, kind=kind))
    elif kind == Kind.UNSUBSCRIBED:
        withdrawn = customer_opt_out(
            customer_id=_customer_id(ref, recipient),
            channel=Channel.EMAIL,
            method=ConsentMethod.ESP_UNSUBSCRIBE,
            source_reference=source,
            note=f"Unsubscribed at {esp_name}.",
            occurred_at=at,
        )
        if withdrawn and ref is not None:
            feedback_count_add(ref=ref, kind=kind)
    return True


def email_tracking_received(sender, event, esp_name, **kwargs) -> None:
    """anymail's ``tracking`` signal: hand the event to the service."""
    email_event_record(esp_name=esp_name, event=event)
