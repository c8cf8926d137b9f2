"""Answers the providers' HTTP calls in process, below their client libraries (benchmarks only).

``requests``' ``HTTPAdapter.send`` is replaced: anymail's ESP backends, twilio's client and firebase-admin
(with google-auth's token request) build, sign and serialise every request and parse every answer for
real; only the socket is skipped. The
answers are the providers' documented success bodies.
"""

from __future__ import annotations

import itertools
import json
import re

import requests
from requests.structures import CaseInsensitiveDict

_ids = itertools.count(1)


# The "To" member of anymail's JSON body: the stub reads only that (decoding the whole 3 KB body would
# count the provider's own parsing as the sender's CPU).
_TO = re.compile(rb'"To":\s*("(?:[^"\\]|\\.)*")')


def _postmark(body: bytes) -> dict:
    match = _TO.search(body)
    return {
        "To": json.loads(match.group(1)) if match else "",
        "SubmittedAt": "2026-11-29T10:00:00Z",
        "MessageID": f"b4-{next(_ids):012d}-0000-0000-0000-000000000000",
        "ErrorCode": 0,
        "Message": "OK",
    }


def _twilio(body: bytes) -> dict:
    sid = f"SM{next(_ids):032x}"
    return {"sid": sid, "status": "queued", "error_code": None, "num_segments": "1", "price": None}


def _answer(adapter, request, **kwargs):
    url = request.url
    if "postmarkapp.com" in url:
        status, payload = 200, _postmark(request.body if isinstance(request.body, bytes) else request.body.encode())
    elif "api.mailgun.net" in url:  # one id for the whole request, as Mailgun answers a batch
        status, payload = 200, {"id": f"<b4.{next(_ids):012d}@mg.bench.example>", "message": "Queued. Thank you."}
    elif "api.sendgrid.com" in url:
        status, payload = 202, None
    elif "oauth2.googleapis.com/token" in url:  # google-auth's access token for FCM
        status, payload = 200, {"access_token": "ya29.bench", "expires_in": 3600, "token_type": "Bearer"}
    elif "fcm.googleapis.com" in url:
        status, payload = 200, {"name": f"projects/tandem-bench/messages/0:{next(_ids)}"}
    elif "twilio.com" in url:
        status, payload = 201, _twilio(request.body or b"")
    else:
        raise AssertionError(f"Unexpected HTTP request in the benchmark: {request.method} {url}")
    response = requests.Response()
    response.status_code = status
    response._content = b"" if payload is None else json.dumps(payload).encode()
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
    response.url = url
    response.request = request
    response.encoding = "utf-8"
    return response


ESPS = {
    "postmark": ("anymail.backends.postmark.EmailBackend", {"POSTMARK_SERVER_TOKEN": "bench-token"}),
    "mailgun": (
        "anymail.backends.mailgun.EmailBackend",
        {"MAILGUN_API_KEY": "bench-key", "MAILGUN_SENDER_DOMAIN": "mg.bench.example"},
    ),
    "sendgrid": ("anymail.backends.sendgrid.EmailBackend", {"SENDGRID_API_KEY": "SG.bench-key"}),
}


def _fcm_service_account() -> str:
    """A service-account file of our own making (its key signs the token request google-auth sends)."""
    import tempfile

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    account = {
        "type": "service_account",
        "project_id": "tandem-bench",
        "private_key_id": "bench-key-1",
        "private_key": pem.decode(),
        "client_email": "push@tandem-bench.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(account, handle)
    return handle.name


def providers_answer_in_process(settings, esp: str = "postmark") -> None:
    """Configure the ESP (email: Postmark, Mailgun or SendGrid), Twilio (SMS) and FCM (push, through
    firebase-admin and google-auth); answer their HTTP calls here."""
    backend, anymail = ESPS[esp]
    settings.EMAIL_BACKEND = backend
    settings.ANYMAIL = {**settings.ANYMAIL, **anymail}
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "bench-auth-token"  # noqa: S105 (answered in process, never sent)
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "0" * 32
    settings.DELIVERY_OUTBOX_CHANNELS = []
    settings.TANDEM_NULL_CHANNELS = []
    settings.DELIVERY_RATE_LIMITS = {
        f"email:{esp}": {"rate": 1_000_000, "burst": 1_000_000},
        "twilio:messaging-service": {"rate": 1_000_000, "burst": 1_000_000},
        "fcm": {"rate": 1_000_000, "burst": 1_000_000},
    }
    settings.FCM_CREDENTIALS_FILE = _fcm_service_account()
    settings.FCM_PROJECT_ID = "tandem-bench"
    requests.adapters.HTTPAdapter.send = _answer
