"""Twilio status callbacks: signed, stored once, the status only moving forward, failures acted on."""

import pytest

from campaigns.models import Delivery, DeliveryEvent, FeedbackCount
from customers.models import ConsentEvidence, ConsentState, Suppression
from customers.normalization import address_hmac
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.campaigns.feedback.conftest import ACCOUNT, PUBLIC, launch_and_send, sid, twilio_post
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
PHONE = "+14155550123"
MESSAGES_URL = rf"^https://api\.twilio\.com/2010-04-01/Accounts/{ACCOUNT}/Messages\.json$"
MESSAGE_SID = sid(42)


@pytest.fixture
def texted(twilio_settings, http_stub, no_send_policies):
    """One text sent through Twilio's real client (HTTP stubbed), asking for status callbacks."""
    twilio_settings.DELIVERY_OUTBOX_CHANNELS = []
    twilio_settings.TWILIO_FROM_NUMBER = "+14155550100"
    twilio_settings.TWILIO_MESSAGING_SERVICE_SID = ""
    twilio_settings.TWILIO_STATUS_CALLBACKS = True
    http_stub.add("POST", MESSAGES_URL, 201, {"sid": MESSAGE_SID, "status": "queued"})
    customer = granted(CustomerFactory(phone=PHONE), "sms")
    campaign = sending_campaign(channels="sms")
    launch_and_send(campaign)
    return Delivery.objects.get(customer_id=customer.pk)


def callback(client, delivery_id, status, error_code="", message_sid=MESSAGE_SID):
    params = {
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT,
        "To": PHONE,
        "From": "+14155550100",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return twilio_post(client, f"/webhooks/twilio/status/{delivery_id}/", params)


def test_the_chunk_sender_asks_twilio_for_callbacks_naming_the_delivery(texted, http_stub):
    [seen] = http_stub.to("/Messages.json")

    assert seen.form()["StatusCallback"] == [f"{PUBLIC}/webhooks/twilio/status/{texted.pk}/"]
    assert texted.provider_message_id == MESSAGE_SID


def test_without_callbacks_configured_none_is_asked_for(twilio_settings):
    from campaigns.channels.sms import SmsChannel
    from campaigns.composer import RenderedSms
    from campaigns.sms import sms_count

    twilio_settings.TWILIO_STATUS_CALLBACKS = False
    payload = SmsChannel(client=object()).build_payload(
        rendered=RenderedSms(body="hi", count=sms_count("hi")), to=PHONE, metadata={"delivery_id": 5}, links={}
    )

    assert "status_callback" not in payload


def test_statuses_are_recorded_and_move_forward_only(client, texted):
    for status in ("queued", "delivered", "sent"):  # "sent" arrives late
        assert callback(client, texted.pk, status).status_code == 204

    texted.refresh_from_db()
    assert texted.provider_status == "delivered"
    assert list(DeliveryEvent.objects.filter(delivery_id=texted.pk).order_by("pk").values_list("kind", flat=True)) == [
        "queued",
        "delivered",
        "sent",
    ]
    assert FeedbackCount.objects.get(channel="sms", kind="delivered").count == 1


def test_a_repeated_callback_is_processed_once(client, texted):
    callback(client, texted.pk, "undelivered", "30005")
    callback(client, texted.pk, "undelivered", "30005")

    assert DeliveryEvent.objects.filter(delivery_id=texted.pk).count() == 1
    assert FeedbackCount.objects.get(channel="sms", kind="bounced").count == 1


def test_error_21610_withdraws_sms_consent_and_suppresses_the_number(client, texted):
    callback(client, texted.pk, "failed", "21610")

    assert ConsentState.objects.get(customer_id=texted.customer_id, channel="sms").status == "withdrawn"
    entry = ConsentEvidence.objects.get(customer_id=texted.customer_id, action="withdraw")
    assert entry.source_reference == f"delivery:{texted.pk}"
    assert Suppression.objects.get(address_hmac=address_hmac("sms", PHONE)).reason == "carrier_opt_out"


@pytest.mark.parametrize(
    ("code", "meaning", "suppressed"),
    [
        ("30003", "Unreachable destination handset", False),
        ("30004", "Message blocked", False),
        ("30005", "Unknown destination handset", True),
        ("30006", "Landline or unreachable carrier", True),
        ("30007", "Message filtered by the carrier", False),
        ("30008", "Unknown error from the carrier", False),
    ],
)
def test_carrier_errors_are_recorded_with_their_meaning(client, texted, code, meaning, suppressed):
    callback(client, texted.pk, "undelivered", code)

    event = DeliveryEvent.objects.get(delivery_id=texted.pk)
    assert (event.kind, event.detail["error_code"]) == ("undelivered", code)
    assert event.detail["error"].startswith(meaning)
    assert Suppression.objects.filter(address_hmac=address_hmac("sms", PHONE)).exists() is suppressed
    texted.refresh_from_db()
    assert texted.provider_status == "undelivered"


def test_a_callback_about_another_message_touches_no_delivery(client, texted):
    callback(client, texted.pk, "failed", "30005", message_sid=sid(99))

    assert DeliveryEvent.objects.get().delivery_id is None
    texted.refresh_from_db()
    assert texted.provider_status == ""
    assert not Suppression.objects.exists()


def test_a_callback_for_an_unknown_delivery_is_kept_without_one(client, twilio_settings):
    assert callback(client, 987654, "delivered").status_code == 204

    assert DeliveryEvent.objects.get().delivery_id is None


def test_forged_callbacks_are_refused_and_change_nothing(client, texted):
    path = f"/webhooks/twilio/status/{texted.pk}/"
    params = {"MessageSid": MESSAGE_SID, "MessageStatus": "failed", "ErrorCode": "21610"}
    other_delivery = twilio_post(client, path, params, signed_url=f"{PUBLIC}/webhooks/twilio/status/{texted.pk + 1}/")
    unsigned = client.post(path, params)

    assert (other_delivery.status_code, unsigned.status_code) == (403, 403)
    assert not DeliveryEvent.objects.exists()
    assert ConsentState.objects.get(customer_id=texted.customer_id, channel="sms").status == "granted"


def test_a_callback_takes_a_bounded_number_of_queries(client, texted, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        callback(client, texted.pk, "undelivered", "30005")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_callbacks_leave_the_furthest_status(twilio_settings):
    from campaigns.feedback.sms import sms_status_record
    from tests.concurrency import race

    customer = granted(CustomerFactory(phone=PHONE), "sms")
    campaign = sending_campaign(channels="sms")
    launch_and_send(campaign)
    delivery = Delivery.objects.get(customer_id=customer.pk)
    Delivery.objects.filter(pk=delivery.pk).update(provider_message_id=MESSAGE_SID)

    def report(status):
        return lambda: sms_status_record(delivery_id=delivery.pk, message_sid=MESSAGE_SID, status=status).moved

    outcomes = race(*(report(status) for status in ("delivered", "sent", "queued", "delivered", "sent")))

    assert [outcome.error for outcome in outcomes] == [None] * 5
    delivery.refresh_from_db()
    assert delivery.provider_status == "delivered"
    assert DeliveryEvent.objects.filter(delivery_id=delivery.pk).count() == 3
    assert FeedbackCount.objects.get(channel="sms", kind="delivered").count == 1
