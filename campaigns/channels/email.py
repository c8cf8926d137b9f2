"""Email through Django's mail API, so any anymail ESP backend (or SMTP) carries it.

Marketing mail leaves on the ESP's bulk lane (Postmark's broadcast stream, the marketing SES
configuration set) and carries campaign tags, cut to one where the ESP takes only one.
"""

from __future__ import annotations

import smtplib
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.module_loading import import_string

from campaigns.channels.base import SendResult, retry_after_seconds, session_environment_resolve
from campaigns.exceptions import ChannelNotConfiguredError, PermanentChannelError, TransientChannelError

# ESPs (anymail's ``esp_name``) that accept one tag per message.
SINGLE_TAG_ESPS = frozenset({"Postmark"})


def esp_name(connection=None) -> str:
    """anymail's name of the ESP that will carry mail (``""`` for SMTP, console or locmem)."""
    backend = type(connection) if connection is not None else import_string(settings.EMAIL_BACKEND)
    return getattr(backend, "esp_name", "") or ""


def single_tag(esp: str) -> bool:
    if esp == "Amazon SES":
        # SES takes any number of X-Tag headers, but only one tag as an SES message tag.
        return bool(settings.ANYMAIL.get("AMAZON_SES_MESSAGE_TAG_NAME"))
    return esp in SINGLE_TAG_ESPS


def marketing_tags(metadata: dict, *, esp: str) -> list[str]:
    """Most specific first: a test send, then the campaign, then the kind of mail."""
    tags = []
    if metadata.get("test_send"):
        tags.append("test-send")
    if metadata.get("campaign_id"):
        tags.append(f"campaign-{metadata['campaign_id']}")
    tags.append("marketing")
    return tags[:1] if single_tag(esp) else tags


def marketing_esp_extra(*, esp: str) -> dict:
    if esp == "Postmark" and settings.MARKETING_POSTMARK_STREAM:
        return {"MessageStream": settings.MARKETING_POSTMARK_STREAM}
    if esp == "Amazon SES" and settings.MARKETING_SES_CONFIGURATION_SET:
        return {"ConfigurationSetName": settings.MARKETING_SES_CONFIGURATION_SET}
    return {}


def email_rate_key(connection=None) -> str | None:
    """The mail backend's rate-limit bucket: ``email:<ESP>``, ``email:smtp``, or ``None`` (mail stays here)."""
    from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
    from django.utils.text import slugify

    esp = esp_name(connection)
    if esp:
        return f"email:{slugify(esp)}"
    backend = type(connection) if connection is not None else import_string(settings.EMAIL_BACKEND)
    return "email:smtp" if issubclass(backend, SmtpBackend) else None


class EmailChannel:
    channel = "email"

    def __init__(self, *, connection=None):
        self.connection = connection
        self.esp = esp_name(connection)
        self._rate_key = email_rate_key(connection)
        self._sender: tuple[str, str, dict] | None = None

    def _marketing_sender(self) -> tuple[str, str, dict]:
        """From address, List-Id and ESP extras: read from the settings once per backend (once per chunk)."""
        if self._sender is None:
            domain = urlparse(settings.PUBLIC_BASE_URL).hostname or "localhost"
            list_id = f"{settings.TANDEM['BRAND_NAME']} marketing <marketing.{domain}>"
            self._sender = (settings.MARKETING_FROM_EMAIL, list_id, marketing_esp_extra(esp=self.esp))
        return self._sender

    def rate_limit_key(self, payload) -> str | None:
        return self._rate_key

    def recipient_address(self, customer) -> str | None:
        return customer.email or None

    def build_payload(self, *, rendered, to: str, metadata: dict, links: dict) -> EmailMultiAlternatives:
        """A multipart message from the marketing sender, with RFC 8058 one-click unsubscribe headers."""
        from_email, list_id, extra = self._marketing_sender()
        headers = {
            "List-Unsubscribe": f"<{links['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": list_id,
        }
        message = EmailMultiAlternatives(
            subject=rendered.subject, body=rendered.text, from_email=from_email, to=[to], headers=headers
        )
        message.attach_alternative(rendered.html, "text/html")
        message.metadata = {key: str(value) for key, value in metadata.items()}  # anymail: finds the row later
        message.tags = marketing_tags(metadata, esp=self.esp)
        if extra:
            message.esp_extra = dict(extra)
        return message

    def _connection(self):
        if self.connection is None:
            self.connection = get_connection()
        return self.connection

    def send(self, payload: EmailMultiAlternatives) -> SendResult:
        from anymail.exceptions import (
            AnymailAPIError,
            AnymailConfigurationError,
            AnymailError,
            AnymailRecipientsRefused,
        )

        try:
            payload.connection = self._connection()
            payload.send(fail_silently=False)
        except AnymailRecipientsRefused as exc:
            raise PermanentChannelError(str(exc)) from exc
        except AnymailAPIError as exc:
            status = _status_code(exc)
            if status is None or status >= 500 or status in (408, 429):
                raise TransientChannelError(
                    str(exc), retry_after=_retry_after(exc), throttled=status == 429
                ) from exc
            raise PermanentChannelError(str(exc)) from exc
        except AnymailConfigurationError as exc:
            raise ChannelNotConfiguredError(str(exc)) from exc
        except AnymailError as exc:  # a message the ESP cannot carry as built (unsupported feature, bad address)
            raise PermanentChannelError(str(exc)) from exc
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise PermanentChannelError(str(exc)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientChannelError(str(exc)) from exc
        status = getattr(payload, "anymail_status", None)
        return SendResult(provider_id=(getattr(status, "message_id", None) or "") if status else "")

    def send_many(self, payloads: list[EmailMultiAlternatives]) -> list[SendResult | Exception]:
        """Each payload's result or channel error, over one open ESP connection."""
        try:
            connection = self._connection()
            opened = connection.open()
            session_environment_resolve(getattr(connection, "session", None), getattr(connection, "api_url", ""))
        except Exception as exc:
            from anymail.exceptions import AnymailConfigurationError

            if isinstance(exc, AnymailConfigurationError):
                return [ChannelNotConfiguredError(str(exc)) for _ in payloads]
            raise
        try:
            return [_outcome(self.send, payload) for payload in payloads]
        finally:
            if opened:
                connection.close()


def _outcome(send, payload):
    from campaigns.exceptions import ChannelError

    try:
        return send(payload)
    except ChannelError as exc:
        return exc


def _status_code(exc) -> int | None:
    if getattr(exc, "status_code", None):
        return exc.status_code
    response = getattr(exc, "response", None)  # boto3 (Amazon SES): the parsed error
    if isinstance(response, dict):
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def _retry_after(exc) -> float | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # boto3 (Amazon SES): the parsed error carries the HTTP headers
        return retry_after_seconds(response.get("ResponseMetadata", {}).get("HTTPHeaders"))
    return retry_after_seconds(getattr(response, "headers", None))
