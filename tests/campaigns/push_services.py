"""The push services for tests, behind the real clients with only HTTP stubbed: FCM (firebase-admin and
google-auth) and browsers' web push services (pywebpush), whose messages a test browser decrypts."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.http_stub import HttpStub, Seen

PROJECT = "tandem-test"
FCM_URL = rf"^https://fcm\.googleapis\.com/v1/projects/{PROJECT}/messages:send$"
TOKEN_URL = r"^https://oauth2\.googleapis\.com/token$"
VAPID_SUBJECT = "mailto:ops@tandem.example"
MOZILLA = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk-firefox"
APPLE = "https://web.push.apple.com/QGuQyavXutnMbRsv-safari"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def fcm_service(settings, http_stub: HttpStub, tmp_path):
    """A service account of our own making; FCM answers by token (``http_stub.answers[token] = (status, body)``).

    A generator for a fixture: deletes the firebase-admin app it made afterwards.
    """
    import firebase_admin

    from campaigns.channels.push import APP_NAME

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    account = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "test-key-1",
        "private_key": pem.decode(),
        "client_email": f"push@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "fcm.json"
    path.write_text(json.dumps(account))
    settings.FCM_CREDENTIALS_FILE = str(path)
    settings.FCM_PROJECT_ID = ""
    http_stub.answers = {}

    def answer(seen):
        token = seen.json()["message"]["token"]
        return http_stub.answers.get(token, (200, {"name": f"projects/{PROJECT}/messages/0:{token}"}))

    http_stub.add("POST", TOKEN_URL, 200, {"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"})
    http_stub.add("POST", FCM_URL, answer=answer)
    yield http_stub
    with contextlib.suppress(ValueError):
        firebase_admin.delete_app(firebase_admin.get_app(APP_NAME))


def vapid_configure(monkeypatch) -> ec.EllipticCurvePublicKey:
    """A VAPID key pair of our own in django-push-notifications' settings; returns its public key."""
    from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS

    private = ec.generate_private_key(ec.SECP256R1())
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, "WP_PRIVATE_KEY", b64url(raw))
    monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, "WP_CLAIMS", {"sub": VAPID_SUBJECT})
    return private.public_key()


def web_push_service(http_stub: HttpStub) -> HttpStub:
    """Mozilla's and Apple's push services: 201 (with the message's Location) unless
    ``http_stub.answers_web[endpoint] = (status, body[, headers])`` says otherwise."""
    answers: dict = {}

    def answer(seen):
        return answers.get(seen.url, (201, b"", {"Location": f"{seen.url}/messages/1"}))

    http_stub.add("POST", r"^https://(updates\.push\.services\.mozilla\.com|web\.push\.apple\.com)/", answer=answer)
    http_stub.answers_web = answers
    return http_stub


@dataclasses.dataclass
class Browser:
    """A browser's push subscription, with the private key that reads what was pushed to it."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls, endpoint: str) -> Browser:
        return cls(endpoint=endpoint, private_key=ec.generate_private_key(ec.SECP256R1()), auth=b"0123456789abcdef")

    @property
    def keys(self) -> dict[str, str]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}

    def device(self, customer=None, *, active: bool = True):
        """The WebPushDevice for this subscription, linked to ``customer`` when given."""
        from push_notifications.models import WebPushDevice

        from campaigns.models import CustomerWebPushDevice

        device = WebPushDevice.objects.create(
            registration_id=self.endpoint, active=active, browser="FIREFOX", **self.keys
        )
        if customer is not None:
            CustomerWebPushDevice.objects.create(customer=customer, device=device)
        return device

    def read(self, seen: Seen) -> dict:
        """Decrypt a request the push service received for this browser (RFC 8291, aes128gcm): its JSON."""
        import http_ece

        plain = http_ece.decrypt(seen.body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm")
        return json.loads(plain)


def vapid_claims(seen: Seen) -> dict:
    """The claims of the VAPID JWT a push request carried (``Authorization: vapid t=<jwt>,k=<key>``)."""
    token = seen.headers["Authorization"].removeprefix("vapid t=").split(",", 1)[0]
    claims = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
