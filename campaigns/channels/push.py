"""Push to every active device of the customer: apps through FCM, browsers through web push (VAPID).

FCM devices (django-push-notifications ``GCMDevice``) get one FCM HTTP v1 message each, sent with
firebase-admin, with a notification for Android, an APNs alert for iOS and a web push notification, so a
token works whatever platform registered it. Browsers subscribed from the preference centre
(``WebPushDevice``) get the JSON notification ``templates/campaigns/push_worker.js`` shows (``title``,
``body``, ``url``, ``image``), encrypted and posted by pywebpush with a VAPID token (py_vapid) made from
django-push-notifications' settings (``WP_PRIVATE_KEY``, ``WP_CLAIMS``, ``WP_ERROR_TIMEOUT``, read through
its config manager). pywebpush is called directly, not through ``WebPushDevice.send_message``: that
wrapper turns every error but 404/410 into bare text (no status, no Retry-After), saves each gone device
on its own, and signs a token per message where one per push service does.

Answers map onto the channel errors the same way for both: a device that is gone (FCM UNREGISTERED or a
token of another sender; a push service's 404 or 410) is deactivated, permanently for it; 429, 5xx and
network errors are transient (with the longest Retry-After given); refused credentials (ours) are a
configuration error. A payload counts as sent when any of its devices took it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from django.conf import settings

from campaigns.channels.base import SendResult, retry_after_seconds, session_environment_resolve
from campaigns.exceptions import (
    ChannelError,
    ChannelNotConfiguredError,
    PermanentChannelError,
    TransientChannelError,
)

APP_NAME = "tandem"
# firebase-admin sends a batch on one thread per message: keep a batch small.
BATCH_SIZE = 100
# Web push requests go to many push services, one HTTP request per browser: this many at once.
WEBPUSH_CONCURRENCY = 16
# How long a push service keeps a message for a browser that is offline: FCM's default for apps (4 weeks),
# so a phone and a laptop of the same customer are treated alike. pywebpush's default, 0, drops it.
WEBPUSH_TTL_SECONDS = 28 * 24 * 3600
# RFC 8291: a push message is at most 4,096 octets encrypted, so at most 3,993 of plaintext.
WEBPUSH_MAX_BYTES = 3993
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
class WebPushTarget:
    device_id: int  # a WebPushDevice
    application_id: str | None
    subscription: dict  # endpoint and keys, as pywebpush takes them


@dataclasses.dataclass(frozen=True)
class PushPayload:
    device_ids: tuple[int, ...]  # FCM devices (GCMDevice)
    messages: tuple  # firebase_admin.messaging.Message, one per FCM device, in the same order
    web_targets: tuple[WebPushTarget, ...] = ()
    web_data: str = ""  # the JSON notification every browser of the payload shows


def webpush_notification(rendered) -> str:
    """The JSON the service worker reads (title, body, url, image); text as it is, nothing HTML-escaped."""
    return json.dumps(
        {
            "title": rendered.title,
            "body": rendered.body,
            "url": rendered.url or "",
            "image": rendered.image_url or "",
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


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


@dataclasses.dataclass(frozen=True)
class _Answer:
    """One device's answer: its message id when it took the message, else the channel error that means."""

    provider_id: str = ""
    error: type[ChannelError] | None = None
    message: str = ""
    gone: bool = False  # the device is not registered any more: deactivate it
    retry_after: float | None = None
    throttled: bool = False


def _classify(exc) -> tuple[type[ChannelError], bool]:
    """The channel error for one FCM device's failure, and whether the device is gone for good."""
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


def _fcm_answer(response) -> _Answer:
    from firebase_admin import exceptions

    if response.success:
        return _Answer(provider_id=response.message_id)
    error = response.exception
    kind, gone = _classify(error)
    return _Answer(
        error=kind,
        message=str(error),
        gone=gone,
        retry_after=retry_after_seconds(getattr(getattr(error, "http_response", None), "headers", None)),
        throttled=isinstance(error, exceptions.ResourceExhaustedError),  # FCM's RESOURCE_EXHAUSTED is its 429
    )


@dataclasses.dataclass(frozen=True)
class _Vapid:
    key: object  # py_vapid.Vapid
    claims: dict
    timeout: float | None


def _vapid(application_id: str | None) -> _Vapid:
    """django-push-notifications' VAPID key, claims and timeout; raises ``ChannelNotConfiguredError``."""
    from django.core.exceptions import ImproperlyConfigured
    from push_notifications.conf import get_manager
    from py_vapid import Vapid, VapidException

    manager = get_manager()
    try:
        private_key = manager.get_wp_private_key(application_id)
        claims = manager.get_wp_claims(application_id)
        timeout = manager.get_wp_error_timeout(application_id)
    except ImproperlyConfigured as exc:
        raise ChannelNotConfiguredError(f"Web push is not configured: {exc}") from exc
    if not private_key or not isinstance(claims, dict) or not claims.get("sub"):
        raise ChannelNotConfiguredError(
            "Web push is not configured: set WEBPUSH_VAPID_PRIVATE_KEY and WEBPUSH_VAPID_SUBJECT."
        )
    try:
        key = Vapid.from_file(private_key) if os.path.isfile(private_key) else Vapid.from_string(private_key)
    except (VapidException, ValueError, TypeError) as exc:
        raise ChannelNotConfiguredError(f"The VAPID private key cannot be read: {exc}") from exc
    return _Vapid(key=key, claims=dict(claims), timeout=timeout)


def _webpush_answer(target: WebPushTarget, response) -> _Answer:
    """A push service's HTTP answer (RFC 8030) as the channel sees it."""
    status = response.status_code
    if status < 300:
        # The push service names the message it queued (RFC 8030 5.); some services do not.
        return _Answer(provider_id=response.headers.get("Location") or f"webpush:{target.device_id}")
    message = f"Push service answered {status}: {(response.text or '').strip()[:200]}".rstrip(": ")
    if status in (404, 410):  # the subscription expired or the browser unsubscribed
        return _Answer(error=PermanentChannelError, message=message, gone=True)
    if status == 429 or status >= 500:
        return _Answer(
            error=TransientChannelError,
            message=message,
            retry_after=retry_after_seconds(response.headers),
            throttled=status == 429,
        )
    if status in (401, 403):  # our VAPID key or claims refused
        return _Answer(error=ChannelNotConfiguredError, message=message)
    return _Answer(error=PermanentChannelError, message=message)


def _vapid_headers(vapid: _Vapid, origin: str) -> dict[str, str]:
    """The VAPID ``Authorization`` header for one push service (its origin is the JWT's audience).

    Signed once per push service and batch rather than once per message, as pywebpush would; valid 12 hours,
    pywebpush's own choice. Raises ``ChannelNotConfiguredError`` for claims py_vapid refuses.
    """
    from py_vapid import VapidException

    claims = {**vapid.claims, "aud": origin, "exp": int(time.time()) + 12 * 3600}
    try:
        return vapid.key.sign(claims)
    except VapidException as exc:
        raise ChannelNotConfiguredError(f"The VAPID claims are refused: {exc}") from exc


def _webpush_one(target: WebPushTarget, data: str, auth: dict | ChannelError, timeout, session) -> _Answer:
    """Encrypt and post one browser's message through pywebpush; never raises for the push service's sake."""
    import requests
    from pywebpush import WebPushException, webpush

    if isinstance(auth, ChannelError):
        return _Answer(error=type(auth), message=str(auth))
    if len(data.encode()) > WEBPUSH_MAX_BYTES:
        return _Answer(
            error=PermanentChannelError, message=f"Longer than web push carries ({WEBPUSH_MAX_BYTES} bytes)."
        )
    try:
        response = webpush(
            subscription_info=target.subscription,
            data=data,
            headers=auth,
            timeout=timeout,
            ttl=WEBPUSH_TTL_SECONDS,
            requests_session=session,
        )
    except WebPushException as exc:
        if exc.response is None:  # refused before any request (the subscription's keys)
            return _Answer(error=PermanentChannelError, message=str(exc.message))
        response = exc.response
    except requests.RequestException as exc:  # timeout, connection refused: the service may be back soon
        return _Answer(error=TransientChannelError, message=f"{type(exc).__name__}: {exc}")
    except (ValueError, TypeError) as exc:  # keys that do not decode or cannot encrypt: nothing was sent
        return _Answer(error=PermanentChannelError, message=f"Unusable subscription keys: {exc}")
    return _webpush_answer(target, response)


def _webpush_send(items: list[tuple[WebPushTarget, str]]) -> list[_Answer]:
    """Each (browser, notification)'s answer, in order; a few requests at once, a connection pool per service."""
    if not items:
        return []
    import requests

    credentials: dict[str | None, _Vapid | ChannelError] = {}
    auths: dict[tuple[str | None, str], dict | ChannelError] = {}
    sessions: dict[str, requests.Session] = {}
    calls = []
    for target, data in items:
        app = target.application_id
        if app not in credentials:
            try:
                credentials[app] = _vapid(app)
            except ChannelNotConfiguredError as exc:
                credentials[app] = exc
        vapid = credentials[app]
        parts = urlsplit(target.subscription["endpoint"])
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in sessions:
            sessions[origin] = requests.Session()
            session_environment_resolve(sessions[origin], origin)  # not the environment walk per request
        if (app, origin) not in auths:
            try:
                auths[(app, origin)] = vapid if isinstance(vapid, ChannelError) else _vapid_headers(vapid, origin)
            except ChannelNotConfiguredError as exc:
                auths[(app, origin)] = exc
        timeout = None if isinstance(vapid, ChannelError) else vapid.timeout
        calls.append((target, data, auths[(app, origin)], timeout, sessions[origin]))
    try:
        with ThreadPoolExecutor(max_workers=min(WEBPUSH_CONCURRENCY, len(calls))) as pool:
            return list(pool.map(lambda call: _webpush_one(*call), calls))
    finally:
        for session in sessions.values():
            session.close()


class PushChannel:
    channel = "push"

    def __init__(self, *, app=None):
        self._app = app

    def recipient_address(self, customer) -> list | None:
        """Every active device of ``customer``, FCM then web push (oldest first), or ``None`` when there is none."""
        from campaigns.models import CustomerPushDevice, CustomerWebPushDevice

        devices = [
            link.device
            for model in (CustomerPushDevice, CustomerWebPushDevice)
            for link in model.objects.filter(customer=customer, device__active=True)
            .select_related("device")
            .order_by("pk")
        ]
        return devices or None

    def rate_limit_key(self, payload: PushPayload) -> str:
        # FCM's quota is per project; browsers' push services get a bucket of their own. A payload draws
        # from one bucket, so one with FCM devices pays FCM's for its browsers too (nothing goes unpaced).
        return "fcm" if payload.messages else "webpush"

    def rate_cost(self, payload: PushPayload) -> int:
        return max(len(payload.messages) + len(payload.web_targets), 1)  # one message per device

    def build_payload(self, *, rendered, to, metadata: dict, links: dict) -> PushPayload:
        """One FCM message per FCM device and one web push notification for the browsers in ``to``; no I/O."""
        from push_notifications.models import WebPushDevice
        from push_notifications.webpush import get_subscription_info

        devices = list(to) if isinstance(to, list | tuple) else [to]
        browsers = [device for device in devices if isinstance(device, WebPushDevice)]
        apps = [device for device in devices if not isinstance(device, WebPushDevice)]
        data = {key: str(value) for key, value in metadata.items()}
        if rendered.url:
            data["url"] = rendered.url
        return PushPayload(
            device_ids=tuple(device.pk for device in apps),
            messages=tuple(_fcm_message(token=device.registration_id, rendered=rendered, data=data) for device in apps),
            web_targets=tuple(
                WebPushTarget(
                    device_id=device.pk,
                    application_id=device.application_id,
                    subscription=get_subscription_info(
                        device.application_id, device.registration_id, device.browser, device.auth, device.p256dh
                    ),
                )
                for device in browsers
            ),
            web_data=webpush_notification(rendered) if browsers else "",
        )

    def send(self, payload: PushPayload) -> SendResult:
        [outcome] = self.send_many([payload])
        if isinstance(outcome, ChannelError):
            raise outcome
        return outcome

    def send_many(self, payloads: list[PushPayload]) -> list[SendResult | ChannelError]:
        """Each payload's result or channel error; FCM in batches, browsers a few at once; gone devices
        deactivated in one update per kind (permanent for them: only a new subscription revives one)."""
        from push_notifications.models import GCMDevice, WebPushDevice

        fcm_answers = iter(self._fcm_send([message for payload in payloads for message in payload.messages]))
        web_answers = iter(
            _webpush_send([(target, payload.web_data) for payload in payloads for target in payload.web_targets])
        )
        gone_apps: list[int] = []
        gone_browsers: list[int] = []
        outcomes: list[SendResult | ChannelError] = []
        for payload in payloads:
            apps = [(device_id, next(fcm_answers)) for device_id in payload.device_ids]
            browsers = [(target.device_id, next(web_answers)) for target in payload.web_targets]
            gone_apps += [device_id for device_id, answer in apps if answer.gone]
            gone_browsers += [device_id for device_id, answer in browsers if answer.gone]
            outcomes.append(self._outcome(payload, apps, browsers))
        if gone_apps:
            GCMDevice.objects.filter(pk__in=gone_apps).update(active=False)
        if gone_browsers:
            WebPushDevice.objects.filter(pk__in=gone_browsers).update(active=False)
        return outcomes

    def _fcm_send(self, messages: list) -> list[_Answer]:
        if not messages:
            return []
        from firebase_admin import exceptions, messaging

        try:
            app = self._app or firebase_app()
        except ChannelNotConfiguredError as exc:  # browsers may still get theirs
            return [_Answer(error=ChannelNotConfiguredError, message=str(exc))] * len(messages)
        responses: list = []
        for start in range(0, len(messages), BATCH_SIZE):
            batch = messages[start : start + BATCH_SIZE]
            try:
                responses.extend(messaging.send_each(batch, app=app).responses)
            except exceptions.FirebaseError as exc:
                responses.extend(messaging.SendResponse(None, exc) for _ in batch)
        return [_fcm_answer(response) for response in responses]

    def _outcome(
        self, payload: PushPayload, apps: list[tuple[int, _Answer]], browsers: list[tuple[int, _Answer]]
    ) -> SendResult | ChannelError:
        labelled = [(str(device_id), answer) for device_id, answer in apps]
        labelled += [(f"webpush:{device_id}", answer) for device_id, answer in browsers]
        if not labelled:
            return PermanentChannelError("No active push device.")
        sent = [answer.provider_id for _, answer in labelled if answer.error is None]
        failures = [(label, answer) for label, answer in labelled if answer.error is not None]
        detail = {
            "sent": len(sent),
            "failed": {label: answer.message for label, answer in failures},
            "deactivated": [device_id for device_id, answer in apps if answer.gone],
            "webpush_deactivated": [device_id for device_id, answer in browsers if answer.gone],
        }
        if sent:
            return SendResult(provider_id=sent[0], detail=detail)
        kinds = {answer.error for _, answer in failures}
        message = "; ".join(answer.message for _, answer in failures)
        if TransientChannelError in kinds:  # a retry may still reach the device whose service was down
            # Only the provider whose bucket this payload drew from is slowed down by its 429.
            own = apps if self.rate_limit_key(payload) == "fcm" else browsers
            waits = [answer.retry_after for _, answer in failures if answer.retry_after is not None]
            return TransientChannelError(
                message,
                retry_after=max(waits) if waits else None,
                throttled=any(answer.throttled for _, answer in own),
            )
        if ChannelNotConfiguredError in kinds:
            return ChannelNotConfiguredError(message)
        if all(answer.gone for _, answer in failures):
            return PermanentChannelError("No device is registered any more: " + message)
        return PermanentChannelError(message)
