"""Push through FCM HTTP v1 with firebase-admin, to every active device of the customer.

One FCM message per device, each with a notification for Android, an APNs alert for iOS and a web
push notification, so a token works whatever platform registered it. FCM's answers map onto the
channel errors: 404 (UNREGISTERED) or a token of another sender deactivates the device and is
permanent; 429, 500 and 503 are transient. A payload counts as sent when any of its devices took it.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings

from django.conf import settings

from campaigns.channels.base import SendResult
from campaigns.exceptions import (
    ChannelError,
    ChannelNotConfiguredError,
    PermanentChannelError,
    TransientChannelError,
)

APP_NAME = "tandem"
# firebase-admin sends a batch on one thread per message: keep a batch small.
BATCH_SIZE = 100
_app_lock = threading.Lock()


def firebase_app():
    """The firebase-admin app for FCM, created once per process from settings.

    Raises ``ChannelNotConfiguredError`` when no credentials are configured (nothing is sent then).
    """
    import firebase_admin
    from firebase_admin import credentials

    with _app_lock:
        try:
            return firebase_admin.get_app(APP_NAME)
        except ValueError:
            pass
        if settings.FCM_CREDENTIALS_FILE:
            try:
                cred = credentials.Certificate(settings.FCM_CREDENTIALS_FILE)
            except (OSError, ValueError) as exc:
                raise ChannelNotConfiguredError(f"FCM_CREDENTIALS_FILE cannot be used: {exc}") from exc
        elif os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            cred = credentials.ApplicationDefault()
        else:
            raise ChannelNotConfiguredError(
                "Push is not configured: set FCM_CREDENTIALS_FILE (or GOOGLE_APPLICATION_CREDENTIALS)."
            )
        options = {"projectId": settings.FCM_PROJECT_ID} if settings.FCM_PROJECT_ID else {}
        return firebase_admin.initialize_app(cred, options, name=APP_NAME)


@dataclasses.dataclass(frozen=True)
class PushPayload:
    device_ids: tuple[int, ...]
    messages: tuple  # firebase_admin.messaging.Message, one per device, in the same order


def _fcm_message(*, token: str, rendered, data: dict[str, str]):
    from firebase_admin import messaging

    title, body = rendered.title, rendered.body
    image = rendered.image_url or None
    url = rendered.url or ""
    content = {
        "data": data,
        "notification": messaging.Notification(title=title, body=body, image=image),
        "android": messaging.AndroidConfig(priority="normal"),
        "apns": messaging.APNSConfig(
            headers={"apns-push-type": "alert", "apns-priority": "5"},
            payload=messaging.APNSPayload(
                aps=messaging.Aps(
                    alert=messaging.ApsAlert(title=title, body=body),
                    sound="default",
                    mutable_content=bool(image),  # lets the app's extension attach the image
                )
            ),
            fcm_options=messaging.APNSFCMOptions(image=image) if image else None,
        ),
        "webpush": messaging.WebpushConfig(
            notification=messaging.WebpushNotification(title=title, body=body, image=image),
            # FCM opens the link on click only for https; app deep links travel in ``data``.
            fcm_options=messaging.WebpushFCMOptions(link=url) if url.startswith("https://") else None,
        ),
    }
    # Devices hold FCM registration tokens (what the apps' getToken returns), which ``token`` carries;
    # the ``fid`` firebase-admin now suggests is another identifier, which we do not store.
    with warnings.catch_warnings(action="ignore", category=DeprecationWarning):
        return messaging.Message(token=token, **content)


def _classify(exc) -> tuple[type[ChannelError], bool]:
    """The channel error for one device's failure, and whether the device is gone for good."""
    from firebase_admin import exceptions, messaging

    if isinstance(exc, exceptions.NotFoundError | messaging.SenderIdMismatchError):
        return PermanentChannelError, True
    if isinstance(
        exc,
        exceptions.ResourceExhaustedError
        | exceptions.InternalError
        | exceptions.UnavailableError
        | exceptions.DeadlineExceededError
        | exceptions.AbortedError
        | exceptions.UnknownError,
    ):
        return TransientChannelError, False
    if isinstance(exc, exceptions.UnauthenticatedError):  # our FCM, APNs or web push credentials
        return ChannelNotConfiguredError, False
    return PermanentChannelError, False


class PushChannel:
    channel = "push"

    def __init__(self, *, app=None):
        self._app = app

    def recipient_address(self, customer) -> list | None:
        """Every active device of ``customer`` (oldest first), or ``None`` when there is none."""
        from campaigns.models import CustomerPushDevice

        links = (
            CustomerPushDevice.objects.filter(customer=customer, device__active=True)
            .select_related("device")
            .order_by("pk")
        )
        devices = [link.device for link in links]
        return devices or None

    def rate_limit_key(self, payload: PushPayload) -> str:
        return "fcm"  # FCM's quota is per project

    def rate_cost(self, payload: PushPayload) -> int:
        return max(len(payload.messages), 1)  # one FCM message per device

    def build_payload(self, *, rendered, to, metadata: dict, links: dict) -> PushPayload:
        """One FCM message per device in ``to`` (a device or a list of them); no I/O."""
        devices = list(to) if isinstance(to, list | tuple) else [to]
        data = {key: str(value) for key, value in metadata.items()}
        if rendered.url:
            data["url"] = rendered.url
        return PushPayload(
            device_ids=tuple(device.pk for device in devices),
            messages=tuple(
                _fcm_message(token=device.registration_id, rendered=rendered, data=data) for device in devices
            ),
        )

    def send(self, payload: PushPayload) -> SendResult:
        [outcome] = self.send_many([payload])
        if isinstance(outcome, ChannelError):
            raise outcome
        return outcome

    def send_many(self, payloads: list[PushPayload]) -> list[SendResult | ChannelError]:
        """Each payload's result or channel error; FCM is called in batches, gone devices deactivated in one update."""
        from firebase_admin import exceptions, messaging
        from push_notifications.models import GCMDevice

        app = self._app or firebase_app()
        messages = [message for payload in payloads for message in payload.messages]
        responses: list = []
        for start in range(0, len(messages), BATCH_SIZE):
            batch = messages[start : start + BATCH_SIZE]
            try:
                responses.extend(messaging.send_each(batch, app=app).responses)
            except exceptions.FirebaseError as exc:
                responses.extend(messaging.SendResponse(None, exc) for _ in batch)
        gone: list[int] = []
        outcomes: list[SendResult | ChannelError] = []
        position = 0
        for payload in payloads:
            answers = responses[position : position + len(payload.messages)]
            position += len(payload.messages)
            outcomes.append(self._outcome(payload, answers, gone))
        if gone:
            GCMDevice.objects.filter(pk__in=gone).update(active=False)
        return outcomes

    @staticmethod
    def _outcome(payload: PushPayload, answers: list, gone: list[int]) -> SendResult | ChannelError:
        if not answers:
            return PermanentChannelError("No active push device.")
        sent: list[str] = []
        failures: dict[int, tuple[type[ChannelError], str]] = {}
        for device_id, answer in zip(payload.device_ids, answers, strict=True):
            if answer.success:
                sent.append(answer.message_id)
                continue
            kind, device_gone = _classify(answer.exception)
            failures[device_id] = (kind, str(answer.exception))
            if device_gone:
                gone.append(device_id)
        detail = {
            "sent": len(sent),
            "failed": {str(device_id): message for device_id, (_, message) in failures.items()},
            "deactivated": [device_id for device_id in payload.device_ids if device_id in gone],
        }
        if sent:
            return SendResult(provider_id=sent[0], detail=detail)
        kinds = {kind for kind, _ in failures.values()}
        message = "; ".join(message for _, message in failures.values())
        if ChannelNotConfiguredError in kinds:
            return ChannelNotConfiguredError(message)
        if TransientChannelError in kinds:
            return _transient(message, [answer.exception for answer in answers if not answer.success])
        if detail["deactivated"] and len(detail["deactivated"]) == len(payload.device_ids):
            return PermanentChannelError("No device is registered any more: " + message)
        return PermanentChannelError(message)


def _transient(message: str, errors: list) -> TransientChannelError:
    """A transient error carrying FCM's longest Retry-After, throttled when FCM said RESOURCE_EXHAUSTED (429)."""
    from firebase_admin import exceptions

    from campaigns.channels.base import retry_after_seconds

    waits = [retry_after_seconds(getattr(getattr(error, "http_response", None), "headers", None)) for error in errors]
    waits = [wait for wait in waits if wait is not None]
    return TransientChannelError(
        message,
        retry_after=max(waits) if waits else None,
        throttled=any(isinstance(error, exceptions.ResourceExhaustedError) for error in errors),
    )
