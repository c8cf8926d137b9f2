"""Unsubscribe links: reading a link's token and withdrawing the consents it names."""

from __future__ import annotations

import dataclasses

from campaigns.links import UNSUBSCRIBE_PURPOSE
from customers.exceptions import InvalidToken
from customers.models import Channel, ConsentEvidence, ConsentMethod, Customer
from customers.services.consent import Evidence
from customers.services.preferences import customer_marketing_leave
from customers.tokens import token_read


@dataclasses.dataclass(frozen=True)
class UnsubscribeLink:
    """What a valid link names: a live profile, its channels, and the delivery it came from."""

    customer: Customer | None
    channels: tuple[str, ...]
    source_reference: str
    preview: bool = False


def unsubscribe_link_read(*, token: str) -> UnsubscribeLink:
    """Read an unsubscribe token; a preview link (from a test send) names nobody.

    Raises ``InvalidToken`` for a bad, expired or wrong-purpose token, and for a token whose profile
    is gone (merged, erased) or whose channel is unknown, so every bad link gets the same answer.
    """
    payload = token_read(purpose=UNSUBSCRIBE_PURPOSE, token=token)
    if payload.get("preview"):
        return UnsubscribeLink(customer=None, channels=(), source_reference="", preview=True)
    customer = Customer.objects.active().filter(public_id=payload.get("c")).first()
    channel = payload.get("ch")
    channels = tuple(Channel.values) if channel == "all" else (channel,)
    if customer is None or any(item not in Channel.values for item in channels):
        raise InvalidToken("This link is not valid.")
    return UnsubscribeLink(customer=customer, channels=channels, source_reference=str(payload.get("s", ""))[:200])


def unsubscribe_apply(
    *, link: UnsubscribeLink, url: str = "", ip_address: str | None = None, user_agent: str = ""
) -> list[ConsentEvidence]:
    """Withdraw every consent the link names, all or none, with one-click evidence.

    Goes through ``customer_marketing_leave``, the preference centre's "leave all email". Idempotent:
    a repeated request appends evidence again but the consent stays withdrawn. Locks
    each consent state row through ``consent_withdraw``. Raises ``InvalidToken`` for a preview link.
    """
    if link.preview or link.customer is None:
        raise InvalidToken("A preview link unsubscribes nobody.")
    evidence = Evidence(
        method=ConsentMethod.ONE_CLICK,
        url=url[:500],
        ip_address=ip_address,
        user_agent=user_agent[:500],
        source_reference=link.source_reference,
    )
    return customer_marketing_leave(customer=link.customer, channels=link.channels, evidence=evidence)
