"""Links a message carries: one-click unsubscribe (RFC 8058) and the preference page, signed and non-expiring."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.urls import reverse

from customers.tokens import token_make

UNSUBSCRIBE_PURPOSE = "unsubscribe"


def unsubscribe_token(*, customer, channel: str, source: str = "") -> str:
    return token_make(purpose=UNSUBSCRIBE_PURPOSE, payload={"c": str(customer.public_id), "ch": channel, "s": source})


_URL_MARKER = "tandem-token-marker"


@lru_cache(maxsize=8)
def _unsubscribe_url_template(base_url: str) -> str:
    # Resolving the URL costs more than signing the token; a chunk sends thousands of messages.
    return f"{base_url}{reverse('campaigns:unsubscribe', args=[_URL_MARKER])}"


def _unsubscribe_url(token: str) -> str:
    return _unsubscribe_url_template(settings.PUBLIC_BASE_URL).replace(_URL_MARKER, token)


def message_links(*, customer, channel: str, source: str = "") -> dict[str, str]:
    """``unsubscribe_url`` (this channel) and ``preferences_url`` (every channel) for one customer."""
    one = unsubscribe_token(customer=customer, channel=channel, source=source)
    everything = unsubscribe_token(customer=customer, channel="all", source=source)
    return {"unsubscribe_url": _unsubscribe_url(one), "preferences_url": _unsubscribe_url(everything)}


def preview_links() -> dict[str, str]:
    """Links for previews and test sends: they lead to a page that says so and change nothing."""
    token = token_make(purpose=UNSUBSCRIBE_PURPOSE, payload={"preview": True})
    url = _unsubscribe_url(token)
    return {"unsubscribe_url": url, "preferences_url": url}
