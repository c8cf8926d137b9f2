"""SMS through Twilio; the client is injectable so tests replace only the transport."""

from __future__ import annotations

from django.conf import settings

from campaigns.channels.base import SendResult
from campaigns.exceptions import PermanentChannelError, TransientChannelError

CARRIER_OPT_OUT = 21610


def twilio_client():
    from twilio.rest import Client

    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)


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

    def build_payload(self, *, rendered, to: str, metadata: dict, links: dict) -> dict:
        payload = {"to": to, "body": rendered.body}
        if settings.TWILIO_MESSAGING_SERVICE_SID:
            payload["messaging_service_sid"] = settings.TWILIO_MESSAGING_SERVICE_SID
        if metadata.get("status_callback"):
            payload["status_callback"] = metadata["status_callback"]
        return payload

    def send(self, payload: dict) -> SendResult:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            message = self.client.messages.create(**payload)
        except TwilioRestException as exc:
            if exc.code == CARRIER_OPT_OUT:
                raise PermanentChannelError(str(exc.msg), opted_out=True) from exc
            if exc.status == 429 or exc.status >= 500:
                raise TransientChannelError(str(exc.msg)) from exc
            raise PermanentChannelError(str(exc.msg)) from exc
        except (TwilioException, OSError) as exc:
            raise TransientChannelError(str(exc)) from exc
        return SendResult(provider_id=getattr(message, "sid", "") or "")
