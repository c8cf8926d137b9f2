"""Push through django-push-notifications (FCM devices); a device reported gone is deactivated."""

from __future__ import annotations

from campaigns.channels.base import SendResult
from campaigns.exceptions import PermanentChannelError, TransientChannelError


def _device_send(device, payload: dict):
    return device.send_message(
        payload["body"],
        title=payload["title"],
        extra={key: payload[key] for key in ("url", "image") if payload.get(key)},
    )


class PushChannel:
    channel = "push"

    def __init__(self, *, transport=None):
        # ``transport(device, payload)`` sends one notification; tests inject a recorder.
        self.transport = transport or _device_send

    def recipient_address(self, customer):
        from campaigns.models import CustomerPushDevice

        link = CustomerPushDevice.objects.filter(customer=customer, device__active=True).select_related("device")
        first = link.first()
        return first.device if first else None

    def build_payload(self, *, rendered, to, metadata: dict, links: dict) -> dict:
        return {
            "device": to,
            "title": rendered.title,
            "body": rendered.body,
            "url": rendered.url,
            "image": rendered.image_url,
            "metadata": {key: str(value) for key, value in metadata.items()},
        }

    def send(self, payload: dict) -> SendResult:
        device = payload["device"]
        try:
            response = self.transport(device, payload)
        except Exception as exc:
            status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
            if status in (404, 410):
                type(device).objects.filter(pk=device.pk).update(active=False)
                raise PermanentChannelError("The device is no longer registered.") from exc
            raise TransientChannelError(str(exc)) from exc
        return SendResult(provider_id=str(response or ""))
