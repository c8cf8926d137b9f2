import pytest
from twilio.request_validator import RequestValidator

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send

PUBLIC = "https://shop.example"
TOKEN = "twilio-test-token"
ACCOUNT = "AC" + "0" * 32


def sid(n: int, prefix: str = "SM") -> str:
    return f"{prefix}{n:032x}"


@pytest.fixture
def twilio_settings(settings):
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.TWILIO_AUTH_TOKEN = TOKEN
    return settings


def twilio_post(client, path: str, params: dict, *, token: str = TOKEN, signed_url: str | None = None, **extra):
    """POST ``params`` to ``path`` as Twilio does: form-encoded, signed over the public URL."""
    signature = RequestValidator(token).compute_signature(signed_url or PUBLIC + path, params)
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature, **extra)


@pytest.fixture
def no_send_policies(db):
    """Seeded quiet hours and caps would make sends depend on the hour the test runs at."""
    from campaigns.models import FrequencyRule, QuietHoursRule

    QuietHoursRule.objects.all().delete()
    FrequencyRule.objects.all().delete()


def launch_and_send(campaign):
    """Launch ``campaign`` and send all its deliveries in one chunk (into the outbox)."""
    result = campaign_launch(campaign=campaign)
    first, last = result.ranges[0][0], result.ranges[-1][1]
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=first, last_id=last)
    return first, last
