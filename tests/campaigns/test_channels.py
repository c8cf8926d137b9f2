"""Test sends through the real channel backends; only the transport is replaced."""

import pytest
from django.core import mail

from campaigns.exceptions import CampaignError
from campaigns.models import AuditEvent
from campaigns.services.messages import variant_test_send
from tests.factories import CustomerFactory, UserFactory
from tests.factories.campaigns import EmailVariantFactory, SmsVariantFactory

pytestmark = pytest.mark.django_db


class FakeTwilioMessages:
    def __init__(self, error=None):
        self.sent = []
        self.error = error

    def create(self, **payload):
        if self.error:
            raise self.error
        self.sent.append(payload)
        return type("Message", (), {"sid": f"SM{len(self.sent)}"})()


class FakeTwilio:
    def __init__(self, error=None):
        self.messages = FakeTwilioMessages(error)


def test_email_test_send_goes_out_with_one_click_headers(settings):
    user = UserFactory(email="me@staff.example.com")
    customer = CustomerFactory(first_name="Zoë")
    variant = EmailVariantFactory()
    to = variant_test_send(variant=variant, user=user, customer=customer)
    assert to == "me@staff.example.com"
    [message] = mail.outbox
    assert message.to == ["me@staff.example.com"]
    assert message.from_email == settings.MARKETING_FROM_EMAIL
    assert message.subject == "[TEST] Hello Zoë"
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{settings.PUBLIC_BASE_URL}/m/u/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Id" in message.extra_headers
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "Hi Zoë" in html
    assert "Unsubscribe:" in message.body
    assert AuditEvent.objects.filter(action="test_sent", subject_id=variant.pk).exists()


def test_email_test_needs_an_address():
    with pytest.raises(CampaignError):
        variant_test_send(variant=EmailVariantFactory(), user=UserFactory(email=""), customer=None)
    assert mail.outbox == []


def test_sms_test_send_uses_the_injected_twilio_client(settings):
    settings.TWILIO_FROM_NUMBER = "+14155550100"
    client = FakeTwilio()
    variant = SmsVariantFactory()
    to = variant_test_send(
        variant=variant,
        user=UserFactory(),
        customer=CustomerFactory(first_name="Ann"),
        phone="(415) 555-0123",
        channel_options={"client": client},
    )
    assert to == "+14155550123"
    [payload] = client.messages.sent
    assert payload["to"] == "+14155550123"
    assert payload["body"].startswith("Tandem Stores: hi Ann,")


def test_sms_bad_phone_sends_nothing():
    client = FakeTwilio()
    with pytest.raises(CampaignError):
        variant_test_send(
            variant=SmsVariantFactory(), user=UserFactory(), phone="12", channel_options={"client": client}
        )
    assert client.messages.sent == []
