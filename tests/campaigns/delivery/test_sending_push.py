"""Campaign push through the engine to every active device of the customer, apps (FCM) and browsers (web push),
through firebase-admin and pywebpush with only HTTP stubbed."""

from datetime import timedelta

import pytest
from django.utils import timezone
from push_notifications.models import GCMDevice

from campaigns.audience import campaign_forecast
from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import CustomerPushDevice, Delivery
from customers.models import ConsentMethod
from customers.services import consent_withdraw
from customers.services.consent import Evidence
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.campaigns.push_services import MOZILLA, Browser, fcm_service, vapid_configure, web_push_service
from tests.factories import CustomerFactory
from tests.factories.campaigns import PushVariantFactory

pytestmark = pytest.mark.django_db
S = Delivery.Status


@pytest.fixture
def fcm(settings, http_stub, tmp_path):
    settings.DELIVERY_OUTBOX_CHANNELS = []
    yield from fcm_service(settings, http_stub, tmp_path)


@pytest.fixture
def push_service(http_stub, monkeypatch, settings):
    settings.DELIVERY_OUTBOX_CHANNELS = []
    vapid_configure(monkeypatch)
    return web_push_service(http_stub)


def app_device(customer, token):
    device = GCMDevice.objects.create(registration_id=token, cloud_message_type="FCM")
    CustomerPushDevice.objects.create(customer=customer, device=device)
    return device


def push_campaign():
    campaign = sending_campaign(channels="push")
    PushVariantFactory(message=campaign.message)
    return campaign


def send(campaign, *, now=None):
    ids = Delivery.objects.filter(cause_id=campaign.pk).order_by("pk").values_list("pk", flat=True)
    return delivery_chunk_send(
        cause_type="campaign", cause_id=campaign.pk, first_id=ids.first(), last_id=ids.last(), now=now
    )


def test_a_campaign_reaches_the_app_and_the_browser_of_the_customer(fcm, push_service):
    # given a customer with push consent, a phone app and a subscribed browser
    customer = granted(CustomerFactory(first_name="Pia"), "push")
    phone = app_device(customer, "android-1")
    firefox = Browser.new(MOZILLA)
    laptop = firefox.device(customer)
    campaign = push_campaign()
    campaign_launch(campaign=campaign)
    # when its chunk is sent
    result = send(campaign)
    # then both devices got the notification, and the delivery says which devices it went to
    assert result.statuses == {"sent": 1}
    [message] = [seen.json()["message"] for seen in fcm.to("/v1/projects/")]
    assert (message["token"], message["notification"]["title"]) == ("android-1", "Hi Pia")
    assert firefox.read(push_service.to(MOZILLA)[0]) == {
        "title": "Hi Pia",
        "body": "Spring offers are in store now.",
        "url": "https://shop.example.com/spring",
        "image": "",
    }
    row = Delivery.objects.get(cause_id=campaign.pk)
    assert (row.status, row.address) == (S.SENT, f"devices:{phone.pk} webpush:{laptop.pk}")
    assert row.provider_message_id.startswith("projects/tandem-test/messages/")


def test_a_gone_browser_is_deactivated_and_the_app_send_still_counts(fcm, push_service):
    customer = granted(CustomerFactory(), "push")
    phone = app_device(customer, "android-1")
    laptop = Browser.new(MOZILLA).device(customer)
    push_service.answers_web[MOZILLA] = (410, b"")
    campaign = push_campaign()
    campaign_launch(campaign=campaign)

    send(campaign)

    laptop.refresh_from_db()
    assert laptop.active is False
    assert Delivery.objects.get(cause_id=campaign.pk).status == S.SENT
    # and the next campaign goes to the app alone, the browser no longer contacted
    push_service.seen.clear()
    later = push_campaign()
    campaign_launch(campaign=later)
    send(later)
    assert Delivery.objects.get(cause_id=later.pk).address == f"devices:{phone.pk}"
    assert push_service.to(MOZILLA) == []


def test_a_customer_with_only_a_browser_is_reachable_and_gets_the_push(push_service):
    # given one customer with a subscribed browser, one whose browser is gone, one without push consent
    reached = granted(CustomerFactory(first_name="Ann"), "push")
    firefox = Browser.new(MOZILLA)
    firefox.device(reached)
    Browser.new(f"{MOZILLA}-old").device(granted(CustomerFactory(), "push"), active=False)
    Browser.new(f"{MOZILLA}-no-consent").device(CustomerFactory())
    campaign = push_campaign()
    # when the campaign is forecast, launched and sent
    [forecast] = campaign_forecast(campaign).channels
    campaign_launch(campaign=campaign)
    result = send(campaign)
    # then only the customer with an active browser and consent counts, and gets it
    removed = {reason: count for reason, _, count in forecast.removed}
    assert (forecast.reachable, removed["missing_address"], removed["no_consent"]) == (1, 1, 1)
    assert list(Delivery.objects.filter(cause_id=campaign.pk).values_list("customer_id", flat=True)) == [reached.pk]
    assert result.statuses == {"sent": 1}
    assert [seen.url for seen in push_service.seen] == [MOZILLA]
    assert firefox.read(push_service.seen[0])["title"] == "Hi Ann"


def test_a_push_service_503_is_retried_by_the_engine_after_its_retry_after(push_service):
    customer = granted(CustomerFactory(), "push")
    firefox = Browser.new(MOZILLA)
    firefox.device(customer)
    push_service.answers_web[MOZILLA] = (503, b"down for maintenance", {"Retry-After": "120"})
    campaign = push_campaign()
    campaign_launch(campaign=campaign)
    now = timezone.now()

    send(campaign, now=now)

    row = Delivery.objects.get(cause_id=campaign.pk)
    assert (row.status, row.attempts, row.error) == (S.QUEUED, 1, "Push service answered 503: down for maintenance")
    assert row.not_before >= now + timedelta(seconds=120)
    # when the push service is back and the row is due again, the same delivery goes out
    del push_service.answers_web[MOZILLA]
    assert send(campaign, now=row.not_before).statuses == {"sent": 1}
    row.refresh_from_db()
    assert (row.status, row.attempts) == (S.SENT, 2)
    assert len(push_service.to(MOZILLA)) == 2
    assert firefox.read(push_service.to(MOZILLA)[-1])["title"].startswith("Hi ")


def test_push_consent_withdrawn_after_launch_reaches_no_device(fcm, push_service):
    customer = granted(CustomerFactory(), "push")
    app_device(customer, "android-1")
    Browser.new(MOZILLA).device(customer)
    campaign = push_campaign()
    campaign_launch(campaign=campaign)
    consent_withdraw(customer=customer, channel="push", evidence=Evidence(method=ConsentMethod.PREFERENCE_CENTRE))

    send(campaign)

    row = Delivery.objects.get(cause_id=campaign.pk)
    assert (row.status, row.reason) == (S.SKIPPED, "no_consent")
    assert push_service.to(MOZILLA) == []
    assert fcm.to("/v1/projects/") == []


@pytest.mark.parametrize("customers", [5, 20])
def test_a_push_chunk_takes_a_bounded_number_of_queries(fcm, push_service, customers, django_assert_max_num_queries):
    for index in range(customers):
        customer = granted(CustomerFactory(), "push")
        app_device(customer, f"tok-{index}")
        Browser.new(f"{MOZILLA}-{index}").device(customer)
    push_service.answers_web[f"{MOZILLA}-1"] = (410, b"")  # deactivating a device is one more statement
    campaign = push_campaign()
    campaign_launch(campaign=campaign)

    # Measured 29 whatever the size: the email and SMS steps, one query per kind of device, one deactivation.
    with django_assert_max_num_queries(32):
        result = send(campaign)

    assert result.statuses == {"sent": customers}
    assert len(push_service.to(MOZILLA)) == len(fcm.to("/v1/projects/")) == customers
