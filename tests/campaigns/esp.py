"""anymail's real ESP backends, set up for tests: settings, a success answer, and what left in the request."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
from collections.abc import Callable
from urllib.parse import parse_qsl

from tests.http_stub import HttpStub, Seen


@dataclasses.dataclass(frozen=True)
class Sent:
    tags: list[str]
    headers: dict[str, str]
    metadata: dict[str, str]
    stream: str | None = None  # Postmark message stream
    configuration_set: str | None = None  # SES


@dataclasses.dataclass(frozen=True)
class Esp:
    name: str
    backend: str
    anymail: dict
    url: str  # pattern of the send endpoint
    ok: Callable[[Seen], tuple[int, object]]
    read: Callable[[Seen], Sent]

    def configure(self, settings, http_stub: HttpStub) -> None:
        settings.EMAIL_BACKEND = self.backend
        settings.ANYMAIL = dict(self.anymail)
        http_stub.add("POST", self.url, answer=self.ok)


def _sendgrid(seen: Seen) -> Sent:
    data = seen.json()
    [personalization] = data["personalizations"]
    return Sent(
        tags=data.get("categories", []),
        headers=data.get("headers", {}),
        metadata={
            k: v
            for k, v in {**data.get("custom_args", {}), **personalization.get("custom_args", {})}.items()
            if k != "anymail_id"
        },
    )


def _form_fields(seen: Seen) -> list[tuple[str, str]]:
    content_type = seen.headers["Content-Type"]
    if content_type.startswith("application/x-www-form-urlencoded"):
        return parse_qsl(seen.body.decode())
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + seen.body
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not part.get_filename():
            fields.append((name, part.get_content() if part.get_content_maintype() == "text" else ""))
    return fields


def _mailgun(seen: Seen) -> Sent:
    fields = _form_fields(seen)
    return Sent(
        tags=[value for name, value in fields if name == "o:tag"],
        headers={name.removeprefix("h:"): value.strip() for name, value in fields if name.startswith("h:")},
        metadata={name.removeprefix("v:"): value for name, value in fields if name.startswith("v:")},
    )


def _postmark(seen: Seen) -> Sent:
    data = seen.json()
    return Sent(
        tags=[data["Tag"]] if "Tag" in data else [],
        headers={item["Name"]: item["Value"] for item in data.get("Headers", [])},
        metadata=data.get("Metadata", {}),
        stream=data.get("MessageStream"),
    )


def _ses(seen: Seen) -> Sent:
    import json

    data = seen.json()
    mime = email.message_from_bytes(base64.b64decode(data["Content"]["Raw"]["Data"]), policy=email.policy.default)
    headers = {name: str(value).strip() for name, value in mime.items()}
    return Sent(
        tags=[str(value) for value in mime.get_all("X-Tag", [])],
        headers=headers,
        metadata=json.loads(headers.get("X-Metadata", "{}")),
        configuration_set=data.get("ConfigurationSetName"),
    )


ESPS = {
    "sendgrid": Esp(
        name="SendGrid",
        backend="anymail.backends.sendgrid.EmailBackend",
        anymail={"SENDGRID_API_KEY": "SG.test-key"},
        url=r"^https://api\.sendgrid\.com/v3/mail/send$",
        ok=lambda seen: (202, None),
        read=_sendgrid,
    ),
    "mailgun": Esp(
        name="Mailgun",
        backend="anymail.backends.mailgun.EmailBackend",
        anymail={"MAILGUN_API_KEY": "key-test", "MAILGUN_SENDER_DOMAIN": "mg.tandem.example"},
        url=r"^https://api\.mailgun\.net/v3/mg\.tandem\.example/messages$",
        ok=lambda seen: (200, {"id": "<20260101.1@mg.tandem.example>", "message": "Queued. Thank you."}),
        read=_mailgun,
    ),
    "postmark": Esp(
        name="Postmark",
        backend="anymail.backends.postmark.EmailBackend",
        anymail={"POSTMARK_SERVER_TOKEN": "pm-test-token"},
        url=r"^https://api\.postmarkapp\.com/email$",
        ok=lambda seen: (
            200,
            {
                "To": seen.json()["To"],
                "SubmittedAt": "2026-01-01T10:00:00.0000000Z",
                "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
                "ErrorCode": 0,
                "Message": "OK",
            },
        ),
        read=_postmark,
    ),
    "ses": Esp(
        name="Amazon SES",
        backend="anymail.backends.amazon_ses.EmailBackend",
        anymail={
            "AMAZON_SES_CLIENT_PARAMS": {
                "region_name": "us-east-1",
                "aws_access_key_id": "AKIATESTTESTTESTTEST",
                "aws_secret_access_key": "test-secret",
            }
        },
        url=r"^https://email\.us-east-1\.amazonaws\.com/v2/email/outbound-emails$",
        ok=lambda seen: (200, {"MessageId": "010001-test-message-id"}),
        read=_ses,
    ),
}
