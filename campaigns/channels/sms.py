"""SMS through Twilio's client; a missing account or sender is refused before any request is made."""

from __future__ import annotations

import functools

from django.conf import settings

from campaigns.channels.base import SendResult, retry_after_seconds
from campaigns.exceptions import ChannelNotConfiguredError, PermanentChannelError, TransientChannelError

CARRIER_OPT_OUT = 21610


def status_callback_url(delivery_id) -> str | None:
    """Where Twilio reports the text's progress: our public URL with the delivery id, when enabled."""
    if not settings.TWILIO_STATUS_CALLBACKS or delivery_id is None:
        return None
    before, after = _status_callback_parts(settings.PUBLIC_BASE_URL)
    return f"{before}{int(delivery_id)}{after}"


_ID_MARKER = 9_876_543_210


@functools.lru_cache(maxsize=4)
def _status_callback_parts(base_url: str) -> tuple[str, str]:
    # Resolving the URL costs more than the rest of the payload; a chunk sends thousands of texts.
    from django.urls import reverse

    before, after = reverse("feedback:twilio-status", args=[_ID_MARKER]).split(str(_ID_MARKER))
    return base_url + before, after


def twilio_client():
    """A client for the configured account; ``ChannelNotConfiguredError`` when credentials are missing.

    Twilio's client would otherwise fall back to the process environment or send unauthenticated, and
    the number and body would leave the process for nothing.
    """
    from twilio.rest import Client

    if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN):
        raise ChannelNotConfiguredError("SMS is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.")
    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=_http_client())


def _http_client():
    """Twilio's HTTP client, keeping the last response's headers (its exceptions carry none: Retry-After)."""
    from twilio.http.http_client import TwilioHttpClient

    class HeadersKeepingHttpClient(TwilioHttpClient):
        last_headers = None

        def request(self, *args, **kwargs):
            self.last_headers = None
            response = super().request(*args, **kwargs)
            self.last_headers = response.headers
            return response

    from campaigns.channels.base import session_environment_resolve

    client = HeadersKeepingHttpClient()
    session_environment_resolve(client.session, "https://api.twilio.com/")
    return client


class SmsChannel:
    channel = "sms"

    def __init__(self, *, client=None):
        self._client = client

    @property
    def client(self):
        if self._client is None:
            self._client = twilio_client()
        return self._client

    def recipient_address(self, customer) -> str | None:
        return customer.phone or None

    def rate_limit_key(self, payload: dict) -> str:
        """Twilio limits each sender (a number, a short code, a Messaging Service's pool)."""
        return "twilio:" + (payload.get("messaging_service_sid") or payload.get("from_") or "")

    def rate_cost(self, payload: dict) -> int:
        """Twilio counts segments against a sender's rate, not messages."""
        from campaigns.sms import sms_count

        return max(sms_count(payload["body"]).segments, 1)

    def build_payload(self, *, rendered, to: str, metadata: dict, links: dict) -> dict:
        payload = {"to": to, "body": rendered.body}
        # A Messaging Service picks the sender from its pool (and handles opt-out keywords), so it wins.
        if settings.TWILIO_MESSAGING_SERVICE_SID:
            payload["messaging_service_sid"] = settings.TWILIO_MESSAGING_SERVICE_SID
        elif settings.TWILIO_FROM_NUMBER:
            payload["from_"] = settings.TWILIO_FROM_NUMBER
        callback = metadata.get("status_callback") or status_callback_url(metadata.get("delivery_id"))
        if callback:
            payload["status_callback"] = callback
        return payload

    def send(self, payload: dict) -> SendResult:
        """One text; ``ChannelNotConfiguredError`` (before any request) without credentials or a sender."""
        from twilio.base.exceptions import TwilioException, TwilioRestException

        if not (payload.get("messaging_service_sid") or payload.get("from_")):
            raise ChannelNotConfiguredError(
                "SMS has no sender: set TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER."
            )
        client = self.client
        try:
            message = client.messages.create(**payload)
        except TwilioRestException as exc:
            if exc.code == CARRIER_OPT_OUT:
                raise PermanentChannelError(str(exc.msg), opted_out=True) from exc
            if exc.status == 429 or exc.status >= 500:
                headers = getattr(getattr(client, "http_client", None), "last_headers", None)
                raise TransientChannelError(
                    str(exc.msg), retry_after=retry_after_seconds(headers), throttled=exc.status == 429
                ) from exc
            raise PermanentChannelError(str(exc.msg)) from exc
        except (TwilioException, OSError) as exc:
            raise TransientChannelError(str(exc)) from exc
        # What the answer says the text costs (the price is often still null at creation).
        detail = {name: getattr(message, name, None) for name in ("price", "price_unit", "num_segments")}
        return SendResult(provider_id=getattr(message, "sid", "") or "", detail=detail)

    def send_many(self, payloads: list[dict]) -> list[SendResult | Exception]:
        """Each payload's result or channel error, through one client (one HTTP session)."""
        from campaigns.exceptions import ChannelError

        outcomes: list[SendResult | Exception] = []
        for payload in payloads:
            try:
                outcomes.append(self.send(payload))
            except ChannelError as exc:
                outcomes.append(exc)
        return outcomes
