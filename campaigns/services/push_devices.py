"""Web push subscriptions a customer makes from the preference centre (VAPID, django-push-notifications).

A browser subscription is an HTTPS endpoint of its push service plus two keys; it belongs to one browser,
so registering it again (the same customer, or someone else on a shared computer) moves the link and
reactivates the device rather than adding a second one. Permission was asked by the browser itself; the
consent ledger records the push grant with the disclosure the page showed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from urllib.parse import urlsplit

from django.db import transaction

from customers.exceptions import ConsentError, CustomerError
from customers.models import Channel, ConsentMethod, Customer, DisclosureText
from customers.services.consent import Evidence, consent_grant

MAX_ENDPOINT = 1000


class InvalidSubscription(CustomerError, ValueError):
    """A push subscription the browser could not have made (bad endpoint or keys)."""


@dataclasses.dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def _key_bytes(value: object, *, name: str, length: int) -> str:
    if not isinstance(value, str) or not value or len(value) > 100:
        raise InvalidSubscription(f"The subscription's {name} key is missing.")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidSubscription(f"The subscription's {name} key is not base64url.") from exc
    if len(raw) != length:
        raise InvalidSubscription(f"The subscription's {name} key has the wrong length.")
    return value


def subscription_parse(data: object) -> Subscription:
    """Check a ``PushSubscription.toJSON()`` object; raises ``InvalidSubscription``."""
    if not isinstance(data, dict):
        raise InvalidSubscription("Not a push subscription.")
    endpoint, keys = data.get("endpoint"), data.get("keys")
    if not isinstance(endpoint, str) or len(endpoint) > MAX_ENDPOINT or not isinstance(keys, dict):
        raise InvalidSubscription("Not a push subscription.")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise InvalidSubscription("A push endpoint must be an https address.")
    return Subscription(
        endpoint=endpoint,
        p256dh=_key_bytes(keys.get("p256dh"), name="p256dh", length=65),  # an uncompressed P-256 point
        auth=_key_bytes(keys.get("auth"), name="auth", length=16),
    )


def _browser(user_agent: str) -> str:
    agent = user_agent.lower()
    for marker, name in (("edg/", "EDGE"), ("opr/", "OPERA"), ("firefox/", "FIREFOX"), ("chrome/", "CHROME")):
        if marker in agent:
            return name
    return "SAFARI" if "safari/" in agent else "CHROME"


@transaction.atomic
def web_push_device_register(
    *,
    customer: Customer,
    subscription: Subscription,
    disclosure: DisclosureText,
    ip_address: str | None,
    user_agent: str = "",
    url: str = "",
    source_reference: str = "",
):
    """Register (or move and reactivate) the browser's subscription for ``customer``; grant push consent.

    Idempotent per endpoint. Locks the device row by its unique endpoint, then the customer and the push
    consent state (through ``consent_grant``). Raises ``ConsentError`` for a disclosure of another
    channel or a merged or erased profile; nothing is stored then.
    """
    from push_notifications.models import WebPushDevice

    from campaigns.models import CustomerWebPushDevice

    if disclosure.channel != Channel.PUSH:
        raise ConsentError("The disclosure shown was written for another channel.")
    consent_grant(
        customer=customer,
        channel=Channel.PUSH,
        evidence=Evidence(
            method=ConsentMethod.PREFERENCE_CENTRE,
            disclosure=disclosure,
            ip_address=ip_address,
            user_agent=user_agent,
            url=url,
            source_reference=source_reference,
        ),
    )
    device = WebPushDevice.objects.select_for_update().filter(registration_id=subscription.endpoint).first()
    fields = {"p256dh": subscription.p256dh, "auth": subscription.auth, "browser": _browser(user_agent)}
    if device is None:
        device = WebPushDevice.objects.create(registration_id=subscription.endpoint, active=True, **fields)
    else:
        WebPushDevice.objects.filter(pk=device.pk).update(active=True, **fields)
    CustomerWebPushDevice.objects.update_or_create(device_id=device.pk, defaults={"customer": customer})
    return device
