"""Links a message carries: one-click unsubscribe (RFC 8058, never expires), the preference centre and
the satisfaction survey.

Each is a signed token of its own purpose, so none works as another. Both name what carried them
(``campaign:4 delivery:123``), which the evidence of any change made through them records.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

from django.conf import settings
from django.urls import reverse

from customers.services.preferences import preference_token_make
from customers.services.surveys import survey_token_make
from customers.tokens import token_make

UNSUBSCRIBE_PURPOSE = "unsubscribe"


def unsubscribe_token(*, customer, channel: str, source: str = "") -> str:
    return token_make(purpose=UNSUBSCRIBE_PURPOSE, payload={"c": str(customer.public_id), "ch": channel, "s": source})


_URL_MARKER = "tandem-token-marker"


@lru_cache(maxsize=16)
def _url_template(base_url: str, name: str) -> str:
    # Resolving the URL costs more than signing the token; a chunk sends thousands of messages.
    return f"{base_url}{reverse(name, args=[_URL_MARKER])}"


def _unsubscribe_url(token: str) -> str:
    return _url_template(settings.PUBLIC_BASE_URL, "campaigns:unsubscribe").replace(_URL_MARKER, token)


def _preferences_url(token: str) -> str:
    return _url_template(settings.PUBLIC_BASE_URL, "public:preferences").replace(_URL_MARKER, token)


def _survey_url(token: str) -> str:
    return _url_template(settings.PUBLIC_BASE_URL, "public:survey").replace(_URL_MARKER, token)


def link_source(*, source: str = "", cause: str = "") -> str:
    """What carried a link, as evidence records it: ``campaign:4 delivery:123``."""
    return " ".join(part for part in (cause, source) if part)[:200]


LINK_NAMES = ("unsubscribe_url", "preferences_url", "survey_url")


def message_links(
    *,
    customer,
    channel: str,
    source: str = "",
    cause: str = "",
    category: str = "",
    names: Collection[str] = LINK_NAMES,
) -> dict[str, str]:
    """``unsubscribe_url`` (one-click, this channel), ``preferences_url`` (the preference centre) and
    ``survey_url`` (the 0-10 question, its answer recorded against ``campaign:4 delivery:123``).

    ``source`` is the delivery (``delivery:123``), ``cause`` what caused it (``campaign:4``), and
    ``category`` the campaign's category, which the preference centre offers to leave. Only the links
    in ``names`` are made (each is a signature; a sender asks for those its message uses).
    """
    carried_by = link_source(source=source, cause=cause)
    links = {}
    if "unsubscribe_url" in names:
        token = unsubscribe_token(customer=customer, channel=channel, source=carried_by)
        links["unsubscribe_url"] = _unsubscribe_url(token)
    if "preferences_url" in names:
        token = preference_token_make(customer=customer, source=carried_by, category=category)
        links["preferences_url"] = _preferences_url(token)
    if "survey_url" in names:
        links["survey_url"] = _survey_url(survey_token_make(customer=customer, source=carried_by))
    return links


def preview_links() -> dict[str, str]:
    """Links for previews and test sends: they lead to a page that says so and change nothing."""
    token = token_make(purpose=UNSUBSCRIBE_PURPOSE, payload={"preview": True})
    url = _unsubscribe_url(token)
    return {"unsubscribe_url": url, "preferences_url": url, "survey_url": url}
