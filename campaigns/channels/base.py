"""The channel protocol: check a recipient, build a payload (pure), send it, classify failures.

Payload building does no I/O so it can be tested alone and timed; ``send`` and ``send_many`` are the
only calls that leave the process, and they raise (or return) ``TransientChannelError`` or
``PermanentChannelError`` only (``ChannelNotConfiguredError``, a permanent one, before any request when
the provider's credentials or sender are missing). ``send_many`` takes a chunk of payloads and shares
what can be shared (one ESP connection, one Twilio client, FCM batches), so a message costs little.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class SendResult:
    provider_id: str = ""
    detail: dict = dataclasses.field(default_factory=dict)


class ChannelBackend(Protocol):
    channel: str

    def recipient_address(self, customer) -> Any:
        """The address to use for ``customer`` (push: the list of its active devices), ``None`` when there is none."""

    def build_payload(self, *, rendered: Any, to: Any, metadata: dict, links: dict) -> Any:
        """A provider payload for one message; no I/O."""

    def send(self, payload: Any) -> SendResult:
        """Hand the payload to the provider."""

    def send_many(self, payloads: list[Any]) -> list[SendResult | Exception]:
        """Each payload's ``SendResult`` or channel error, in order; a refusal of one does not stop the rest."""

    # Optional, for the shared provider rate limit (campaigns/delivery/ratelimit.py); without them a
    # backend is not limited. The key names the provider's bucket (``email:postmark``, ``twilio:<sender>``,
    # ``fcm``), or is ``None``; the cost is the tokens one payload takes (segments, devices), default 1.
    #
    # def rate_limit_key(self, payload: Any) -> str | None: ...
    # def rate_cost(self, payload: Any) -> int: ...


def retry_after_seconds(headers) -> float | None:
    """A response's Retry-After in seconds (delta-seconds or an HTTP date), ``None`` when absent or unreadable."""
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    if not value:
        return None
    value = str(value).strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def session_environment_resolve(session, url: str) -> None:
    """Read the proxy and CA-bundle environment once for a provider's ``requests`` session.

    With ``trust_env`` on, requests walks every environment variable on each request (about a third of
    a millisecond here, more than building the message). The same settings are resolved once for the
    provider's host (``no_proxy`` honoured) and fixed on the session. Idempotent.
    """
    import os

    import requests

    if not isinstance(session, requests.Session) or not session.trust_env:
        return
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False
