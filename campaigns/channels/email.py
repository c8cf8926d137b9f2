"""Email through Django's mail API, so any anymail ESP backend (or SMTP) carries it."""

from __future__ import annotations

import smtplib
from urllib.parse import urlparse

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from campaigns.channels.base import SendResult
from campaigns.exceptions import PermanentChannelError, TransientChannelError


class EmailChannel:
    channel = "email"

    def __init__(self, *, connection=None):
        self.connection = connection

    def recipient_address(self, customer) -> str | None:
        return customer.email or None

    def build_payload(self, *, rendered, to: str, metadata: dict, links: dict) -> EmailMultiAlternatives:
        """A multipart message from the marketing sender, with RFC 8058 one-click unsubscribe headers."""
        domain = urlparse(settings.PUBLIC_BASE_URL).hostname or "localhost"
        headers = {
            "List-Unsubscribe": f"<{links['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{settings.TANDEM['BRAND_NAME']} marketing <marketing.{domain}>",
        }
        message = EmailMultiAlternatives(
            subject=rendered.subject,
            body=rendered.text,
            from_email=settings.MARKETING_FROM_EMAIL,
            to=[to],
            headers=headers,
        )
        message.attach_alternative(rendered.html, "text/html")
        message.metadata = {key: str(value) for key, value in metadata.items()}  # anymail: finds the row later
        return message

    def send(self, payload: EmailMultiAlternatives) -> SendResult:
        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused

        payload.connection = self.connection or get_connection()
        try:
            payload.send(fail_silently=False)
        except AnymailRecipientsRefused as exc:
            raise PermanentChannelError(str(exc)) from exc
        except AnymailAPIError as exc:
            status = getattr(exc, "status_code", None)
            if status is None or status >= 500 or status == 429:
                raise TransientChannelError(str(exc)) from exc
            raise PermanentChannelError(str(exc)) from exc
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise PermanentChannelError(str(exc)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientChannelError(str(exc)) from exc
        status = getattr(payload, "anymail_status", None)
        return SendResult(provider_id=(getattr(status, "message_id", None) or "") if status else "")
