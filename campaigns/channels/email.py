"""Email through Django's mail API, so any anymail ESP backend (or SMTP) carries it.

Marketing mail leaves on the ESP's bulk lane (Postmark's broadcast stream, the marketing SES
configuration set) and carries campaign tags, cut to one where the ESP takes only one.
"""

from __future__ import annotations

import logging
import smtplib
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.module_loading import import_string

from campaigns.channels.base import SendResult, retry_after_seconds, session_environment_resolve
from campaigns.delivery.conf import conf
from campaigns.exceptions import ChannelNotConfiguredError, PermanentChannelError, TransientChannelError

logger = logging.getLogger(__name__)

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
        self._style = False  # the ESP's batch style, looked up on first use
        self._forms: dict[object, object] = {}  # compiled variant -> its merge form (or None)

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
        try:
            payload.connection = self._connection()
            payload.send(fail_silently=False)
        except Exception as exc:
            raise _channel_error(exc) from exc
        status = getattr(payload, "anymail_status", None)
        return SendResult(provider_id=(getattr(status, "message_id", None) or "") if status else "")

    def _merge_style(self):
        if self._style is False:
            from campaigns.channels.email_batch import esp_merge

            self._style = esp_merge(self._connection()) if conf("DELIVERY_EMAIL_BATCH") else None
        return self._style

    def batch_prepare(self, payload: EmailMultiAlternatives, *, compiled, context: dict, rendered) -> None:
        """Mark ``payload`` as able to leave in one request with others of its variant, where the ESP can."""
        from campaigns.channels.email_batch import merge_form, recipient_merge

        style = self._merge_style()
        if style is None:
            return
        if compiled not in self._forms:
            self._forms[compiled] = merge_form(compiled)
        payload.tandem_merge = recipient_merge(
            self._forms[compiled], context=context, rendered=rendered, reserved=style.reserved
        )

    def send_many(self, payloads: list[EmailMultiAlternatives]) -> list[SendResult | Exception]:
        """Each payload's result or channel error, over one open ESP connection.

        Payloads marked by ``batch_prepare`` leave in batches, one request per variant and up to the
        ESP's batch size; the rest one request each.
        """
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
            results: list[SendResult | Exception | None] = [None] * len(payloads)
            style = self._merge_style()
            if style is not None:
                for batch in _batches(payloads, style.size):
                    sent = self._send_batch([payloads[index] for index in batch], style)
                    for index, result in zip(batch, sent, strict=True):
                        results[index] = result
            return [
                result if result is not None else _outcome(self.send, payload)
                for payload, result in zip(payloads, results, strict=True)
            ]
        finally:
            if opened:
                connection.close()

    def _send_batch(self, payloads: list[EmailMultiAlternatives], style) -> list[SendResult | Exception | None]:
        """One ESP request for ``payloads`` (one variant, distinct addresses): each one's result, in order.

        ``None`` for each when the batch could not be built or the ESP refused the request as a whole (a
        4xx: nothing was accepted): each then goes alone, so only an email that is itself refused fails.
        """
        from anymail.exceptions import AnymailRecipientsRefused

        try:
            message = self._batch_build(payloads, style)
        except Exception:  # a batch only saves requests: never let it cost a message
            logger.exception("an email batch could not be built; its emails go one by one")
            return [None] * len(payloads)
        try:
            message.send(fail_silently=False)
        except Exception as exc:
            error = _channel_error(exc)
            alone = isinstance(error, PermanentChannelError) and not isinstance(error, ChannelNotConfiguredError)
            if alone and not isinstance(exc, AnymailRecipientsRefused):
                return [None] * len(payloads)
            return [error] * len(payloads)
        recipients = getattr(getattr(message, "anymail_status", None), "recipients", {}) or {}
        return [_recipient_result(recipients.get(payload.to[0])) for payload in payloads]

    def _batch_build(self, payloads: list[EmailMultiAlternatives], style) -> EmailMultiAlternatives:
        from campaigns.channels.email_batch import batch_message

        first = payloads[0]
        batch = batch_message(first.tandem_merge.form, [payload.tandem_merge for payload in payloads], style)
        headers = {name: value for name, value in first.extra_headers.items() if name != "List-Unsubscribe"}
        addresses = [payload.to[0] for payload in payloads]
        message = EmailMultiAlternatives(
            subject=batch.subject,
            body=batch.text,
            from_email=first.from_email,
            to=addresses,
            headers=headers,
            connection=self._connection(),
        )
        message.attach_alternative(batch.html, "text/html")
        message.merge_data = dict(zip(addresses, batch.data, strict=True))
        # What every recipient shares is the message's metadata; the rest (the delivery id) per recipient.
        shared = {
            key: value for key, value in first.metadata.items() if all(p.metadata.get(key) == value for p in payloads)
        }
        message.metadata = shared
        message.merge_metadata = {
            address: {key: value for key, value in payload.metadata.items() if key not in shared}
            for address, payload in zip(addresses, payloads, strict=True)
        }
        unsubscribe = batch.text_fields.get("unsubscribe_url")
        if (
            style.fields_in_headers
            and unsubscribe is not None
            and all(
                payload.extra_headers["List-Unsubscribe"] == f"<{payload.tandem_merge.text_values['unsubscribe_url']}>"
                for payload in payloads
            )
        ):
            # The header is the link the text part carries: its merge field, not a second copy per recipient.
            message.extra_headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        else:
            message.merge_headers = {
                address: {"List-Unsubscribe": payload.extra_headers["List-Unsubscribe"]}
                for address, payload in zip(addresses, payloads, strict=True)
            }
        message.tags = list(first.tags)
        if getattr(first, "esp_extra", None):
            message.esp_extra = dict(first.esp_extra)
        return message


def _batch_key(payload: EmailMultiAlternatives) -> tuple:
    """Payloads with equal keys can share one request: same form, sender, tags, ESP extras and headers."""
    shared_headers = sorted((k, v) for k, v in payload.extra_headers.items() if k != "List-Unsubscribe")
    extra = sorted((getattr(payload, "esp_extra", None) or {}).items())
    return (id(payload.tandem_merge.form), payload.from_email, tuple(payload.tags), repr(extra), tuple(shared_headers))


def _batches(payloads: list[EmailMultiAlternatives], size: int) -> list[list[int]]:
    """Indexes of ``payloads`` that leave together: two or more, one address at most once in each."""
    groups: dict[tuple, list[list[int]]] = {}
    seen: dict[tuple, list[set[str]]] = {}
    for index, payload in enumerate(payloads):
        merge = getattr(payload, "tandem_merge", None)
        if merge is None or len(payload.to) != 1 or "<" in payload.to[0]:
            continue
        key = _batch_key(payload)
        batches, addresses = groups.setdefault(key, []), seen.setdefault(key, [])
        address = payload.to[0].lower()
        for batch, taken in zip(batches, addresses, strict=True):
            if address not in taken and len(batch) < size:
                batch.append(index)
                taken.add(address)
                break
        else:
            batches.append([index])
            addresses.append({address})
    return [batch for batches in groups.values() for batch in batches if len(batch) > 1]


def _recipient_result(status) -> SendResult | Exception:
    """A batch recipient's outcome from anymail's per-recipient status."""
    if status is not None and status.status in ("rejected", "invalid", "failed"):
        return PermanentChannelError(f"The ESP did not accept this recipient ({status.status}).")
    message_id = getattr(status, "message_id", None) if status is not None else None
    return SendResult(provider_id=message_id if isinstance(message_id, str) else "")


def _channel_error(exc: Exception) -> Exception:
    """The channel error an ESP or SMTP failure means; anything else is raised as it is."""
    from anymail.exceptions import (
        AnymailAPIError,
        AnymailConfigurationError,
        AnymailError,
        AnymailRecipientsRefused,
    )

    if isinstance(exc, AnymailRecipientsRefused):
        return PermanentChannelError(str(exc))
    if isinstance(exc, AnymailAPIError):
        status = _status_code(exc)
        if status is None or status >= 500 or status in (408, 429):
            return TransientChannelError(str(exc), retry_after=_retry_after(exc), throttled=status == 429)
        return PermanentChannelError(str(exc))
    if isinstance(exc, AnymailConfigurationError):
        return ChannelNotConfiguredError(str(exc))
    if isinstance(exc, AnymailError):  # a message the ESP cannot carry as built (unsupported feature, bad address)
        return PermanentChannelError(str(exc))
    if isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused):
        return PermanentChannelError(str(exc))
    if isinstance(exc, smtplib.SMTPException | OSError):
        return TransientChannelError(str(exc))
    raise exc


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
