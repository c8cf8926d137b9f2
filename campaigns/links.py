"""Links a message carries: one-click unsubscribe (RFC 8058) and the preference page, signed and non-expiring."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from customers.tokens import token_make

UNSUBSCRIBE_PURPOSE = "unsubscribe"


def unsubscribe_token(*, customer, channel: str, source: str = "") -> str:
    return token_make(purpose=UNSUBSCRIBE_PURPOSE, payload={"c": str(customer.public_id), "ch": channel, "s": source})


def _absolute(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def message_links(*, customer, channel: str, source: str = "") -> dict[str, str]:
    """``unsubscribe_url`` (this channel) and ``preferences_url`` (every channel) for one customer."""
    one = unsubscribe_token(customer=customer, channel=channel, source=source)
    everything = unsubscribe_token(customer=customer, channel="all", source=source)
    return {
        "unsubscribe_url": _absolute(reverse("campaigns:unsubscribe", args=[one])),
        "preferences_url": _absolute(reverse("campaigns:unsubscribe", args=[everything])),
    }


def preview_links() -> dict[str, str]:
    """Links for previews and test sends: they lead to a page that says so and change nothing."""
    token = token_make(purpose=UNSUBSCRIBE_PURPOSE, payload={"preview": True})
    url = _absolute(reverse("campaigns:unsubscribe", args=[token]))
    return {"unsubscribe_url": url, "preferences_url": url}
