"""Test sends through the real channel backends; only the transport is replaced."""

import pytest
from django.core import mail
from django.test import override_settings

from campaigns.exceptions import CampaignError
from campaigns.models import AuditEvent, StaffTestRecipient
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
    StaffTestRecipient.objects.create(channel="sms", address="+14155550123", label="Marketing phone")
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


def _sms_test(phone, client):
    with override_settings(TWILIO_FROM_NUMBER="+15005550006"):
        return variant_test_send(
            variant=SmsVariantFactory(), user=UserFactory(), phone=phone, channel_options={"client": client}
        )


def test_sms_test_to_a_typed_number_nobody_vouched_for_is_refused():
    client = FakeTwilio()
    with pytest.raises(CampaignError, match="not a staff test number"):
        _sms_test("+1 415 555 0199", client)
    assert client.messages.sent == []
    assert not AuditEvent.objects.filter(action="test_sent").exists()


@pytest.mark.parametrize("status", ["withdrawn", "pending", "none"])
def test_sms_test_to_a_customer_without_sms_consent_is_refused(status):
    from customers.models import ConsentState

    customer = CustomerFactory(phone="+14155550142")
    ConsentState.objects.create(customer=customer, channel="sms", status=status)
    client = FakeTwilio()
    with pytest.raises(CampaignError, match="not a staff test number"):
        _sms_test("(415) 555-0142", client)
    assert client.messages.sent == []


def test_sms_test_to_a_consented_customer_goes_out():
    from customers.models import ConsentState

    customer = CustomerFactory(phone="+14155550143")
    ConsentState.objects.create(customer=customer, channel="sms", status="granted")
    client = FakeTwilio()
    assert _sms_test("(415) 555-0143", client) == "+14155550143"
    assert [payload["to"] for payload in client.messages.sent] == ["+14155550143"]


@pytest.mark.parametrize("on_staff_list", [True, False])
def test_sms_test_to_a_suppressed_number_is_refused_even_for_staff(on_staff_list):
    from customers.models import ConsentState
    from customers.services.consent import suppression_add

    customer = CustomerFactory(phone="+14155550144")
    ConsentState.objects.create(customer=customer, channel="sms", status="granted")
    if on_staff_list:
        StaffTestRecipient.objects.create(channel="sms", address="+14155550144", label="Shared phone")
    suppression_add(channel="sms", address="+14155550144", reason="manual")
    client = FakeTwilio()
    with pytest.raises(CampaignError):
        _sms_test("+14155550144", client)
    assert client.messages.sent == []


def test_an_inactive_staff_test_number_is_refused():
    StaffTestRecipient.objects.create(channel="sms", address="+14155550145", label="Old phone", is_active=False)
    client = FakeTwilio()
    with pytest.raises(CampaignError):
        _sms_test("+14155550145", client)
    assert client.messages.sent == []


def test_a_provider_session_reads_the_proxy_environment_once_and_honours_no_proxy(monkeypatch):
    import requests

    from campaigns.channels.base import session_environment_resolve

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    proxied, bypassed = requests.Session(), requests.Session()

    session_environment_resolve(proxied, "https://api.postmarkapp.com/email")
    session_environment_resolve(bypassed, "https://api.twilio.com/")

    assert proxied.proxies.get("https") == "http://proxy.internal:3128"
    assert "https" not in bypassed.proxies
    assert proxied.trust_env is False
    assert bypassed.trust_env is False
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere:1")
    session_environment_resolve(proxied, "https://api.postmarkapp.com/email")  # resolved once: unchanged
    assert proxied.proxies["https"] == "http://proxy.internal:3128"
