"""A campaign pauses itself when complaints or hard bounces pass their limits; the admin shows the rates."""

import base64

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import AuditEvent, Campaign, Delivery, FeedbackCount
from customers.models import Customer
from tests.campaigns.delivery.conftest import sending_campaign
from tests.campaigns.feedback import esp_payloads
from tests.campaigns.feedback.conftest import sid, twilio_post
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.customers import PASSWORD

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:django-anymail has dropped official support for SendGrid"),
]
SECRET = "tandem:webhook-secret"
AUTH = "Basic " + base64.b64encode(SECRET.encode()).decode()


@pytest.fixture(autouse=True)
def _anymail(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": [SECRET]}


def campaign_sent_to(count: int, channel: str = "email") -> tuple[Campaign, list[Delivery]]:
    """A campaign still sending whose ``count`` deliveries of ``channel`` were sent."""
    campaign = sending_campaign(channels=channel)
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING, started_at=now)
    customers = Customer.objects.bulk_create(
        CustomerFactory.build(phone=f"+1415555{i:04d}" if channel == "sms" else None) for i in range(count)
    )
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            cause_type="campaign",
            cause_id=campaign.pk,
            customer_id=customer.pk,
            channel=channel,
            message_id=campaign.message_id,
            status="sent",
            address=customer.email if channel == "email" else customer.phone,
            provider_message_id=sid(index) if channel == "sms" else f"esp-{index}",
            created_at=now,
            updated_at=now,
            sent_at=now,
        )
        for index, customer in enumerate(customers)
    )
    return campaign, deliveries


def report(client, what, delivery, n):
    path, body, content_type, headers = esp_payloads.sendgrid(what, delivery.address, delivery.pk, n)
    response = client.post(path, body, content_type=content_type, HTTP_AUTHORIZATION=AUTH, **headers)
    assert response.status_code == 200


def status(campaign):
    campaign.refresh_from_db()
    return campaign.status


def test_complaints_past_the_limit_pause_the_campaign_with_its_reason(client):
    campaign, deliveries = campaign_sent_to(400)

    report(client, "complaint", deliveries[0], 1)  # 1 of 400: 0.25 %
    assert status(campaign) == "sending"
    report(client, "complaint", deliveries[1], 2)  # 2 of 400: 0.50 %

    assert status(campaign) == "paused"
    event = AuditEvent.objects.filter(campaign=campaign, action="status_changed").latest("id")
    assert event.actor is None
    assert event.changes["note"] == "Paused: email complaint rate 0.50% (2 of 400 sent) passed the 0.30% limit"


def test_hard_bounces_past_five_percent_pause_the_campaign(client):
    campaign, deliveries = campaign_sent_to(200)

    for n, delivery in enumerate(deliveries[:10]):  # 10 of 200: 5 %, not past it
        report(client, "hard_bounce", delivery, n)
    assert status(campaign) == "sending"
    report(client, "soft_bounce", deliveries[10], 10)  # soft bounces do not count
    assert status(campaign) == "sending"
    report(client, "hard_bounce", deliveries[11], 11)

    assert status(campaign) == "paused"
    assert FeedbackCount.objects.get(cause_id=campaign.pk, kind="bounced").count == 11


def test_below_the_minimum_sends_nothing_is_judged(client):
    campaign, deliveries = campaign_sent_to(150)

    for n, delivery in enumerate(deliveries[:5]):
        report(client, "complaint", delivery, n)

    assert status(campaign) == "sending"


def test_the_limits_are_settings(client, settings):
    settings.SENDER_HEALTH = {"MAX_HARD_BOUNCE_RATE": 0.01, "MIN_SENDS": 50}
    campaign, deliveries = campaign_sent_to(60)

    report(client, "hard_bounce", deliveries[0], 1)

    assert status(campaign) == "paused"


def test_permanent_sms_failures_count_as_hard_bounces(client, twilio_settings):
    twilio_settings.SENDER_HEALTH = {"MIN_SENDS": 20}
    campaign, deliveries = campaign_sent_to(20, channel="sms")

    for n, delivery in enumerate(deliveries[:2]):
        params = {"MessageSid": sid(n), "MessageStatus": "undelivered", "ErrorCode": "30005"}
        twilio_post(client, f"/webhooks/twilio/status/{delivery.pk}/", params)

    assert status(campaign) == "paused"
    assert "sms hard-bounce rate 10.00%" in AuditEvent.objects.filter(campaign=campaign).latest("id").changes["note"]


def test_a_healthy_campaign_judges_from_counters(client, django_assert_max_num_queries):
    campaign, deliveries = campaign_sent_to(400)
    report(client, "complaint", deliveries[0], 1)  # counts the sends once, up to what the limit needs

    with django_assert_max_num_queries(25) as captured:
        report(client, "hard_bounce", deliveries[1], 2)  # 1 bounce against at least 334 sent: healthy
        report(client, "delivered", deliveries[2], 3)

    assert not any("COUNT(" in query["sql"].upper() for query in captured.captured_queries)
    assert FeedbackCount.objects.get(cause_id=campaign.pk, kind="sent_seen").count == 334
    assert status(campaign) == "sending"


def test_a_finished_campaign_is_left_alone(client):
    campaign, deliveries = campaign_sent_to(200)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT)

    for n, delivery in enumerate(deliveries[:5]):
        report(client, "complaint", delivery, n)

    assert status(campaign) == "sent"


def test_the_campaign_page_shows_rates_per_channel_and_why_it_paused(client):
    campaign, deliveries = campaign_sent_to(400)
    report(client, "complaint", deliveries[0], 1)
    report(client, "complaint", deliveries[1], 2)
    report(client, "unsubscribe", deliveries[2], 3)
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)

    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()

    assert 'id="campaign-health"' in page
    assert '<td class="health-complained">2 (0.50%)</td>' in page
    assert '<td class="health-unsubscribed">1 (0.25%)</td>' in page
    assert "Paused automatically: email complaint rate 0.50% (2 of 400 sent)" in page
