"""Push through firebase-admin's real FCM client (and google-auth's token exchange); only HTTP is stubbed."""

import pytest
from push_notifications.models import GCMDevice

from campaigns.channels.registry import channel_get
from campaigns.composer import RenderedPush
from campaigns.exceptions import ChannelNotConfiguredError, PermanentChannelError, TransientChannelError
from campaigns.models import CustomerPushDevice
from campaigns.services.messages import variant_test_send
from tests.campaigns.push_services import PROJECT, fcm_service
from tests.factories import CustomerFactory, UserFactory
from tests.factories.campaigns import PushVariantFactory

pytestmark = pytest.mark.django_db

RENDERED = RenderedPush(title="Spring", body="New in store", url="https://shop.example.com/spring", image_url="")


def fcm_error(status: int, status_text: str, error_code: str):
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
    return {"error": {"code": status, "message": "refused", "status": status_text, "details": details}}


@pytest.fixture
def fcm(settings, http_stub, tmp_path):
    yield from fcm_service(settings, http_stub, tmp_path)


def device(customer=None, token="tok", active=True, **kwargs):  # noqa: S107 (a device token, no secret)
    gcm = GCMDevice.objects.create(registration_id=token, cloud_message_type="FCM", active=active, **kwargs)
    if customer is not None:
        CustomerPushDevice.objects.create(customer=customer, device=gcm)
    return gcm


def fcm_messages(stub):
    return [seen.json()["message"] for seen in stub.to("fcm.googleapis.com")]


def test_every_active_device_of_the_customer_gets_the_notification_on_every_platform(fcm):
    customer = CustomerFactory()
    phone, tablet = device(customer, "android-1"), device(customer, "ios-1")
    device(customer, "old", active=False)
    device(CustomerFactory(), "someone-else")
    backend = channel_get("push")

    to = backend.recipient_address(customer)
    result = backend.send(backend.build_payload(rendered=RENDERED, to=to, metadata={"delivery_id": 5}, links={}))

    assert to == [phone, tablet]
    messages = fcm_messages(fcm)
    assert sorted(message["token"] for message in messages) == ["android-1", "ios-1"]
    for message in messages:
        assert message["notification"] == {"title": "Spring", "body": "New in store"}
        assert message["apns"]["payload"]["aps"]["alert"] == {"title": "Spring", "body": "New in store"}
        assert message["apns"]["headers"]["apns-push-type"] == "alert"
        assert message["webpush"]["notification"] == {"title": "Spring", "body": "New in store"}
        assert message["webpush"]["fcm_options"] == {"link": "https://shop.example.com/spring"}
        assert message["data"] == {"delivery_id": "5", "url": "https://shop.example.com/spring"}
    # Authorised with a token google-auth obtained from our service account.
    assert all(seen.headers["Authorization"] == "Bearer ya29.test" for seen in fcm.to("fcm.googleapis.com"))
    assert result.provider_id.startswith(f"projects/{PROJECT}/messages/")
    assert result.detail["sent"] == 2


def test_an_unregistered_device_is_deactivated_and_the_others_still_get_it(fcm):
    customer = CustomerFactory()
    gone, kept = device(customer, "gone"), device(customer, "kept")
    fcm.answers["gone"] = (404, fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
    backend = channel_get("push")

    payload = backend.build_payload(rendered=RENDERED, to=backend.recipient_address(customer), metadata={}, links={})
    result = backend.send(payload)

    gone.refresh_from_db()
    kept.refresh_from_db()
    assert (gone.active, kept.active) == (False, True)
    assert result.detail["sent"] == 1
    assert result.detail["deactivated"] == [gone.pk]
    assert backend.recipient_address(customer) == [kept]


def test_when_every_device_is_unregistered_the_send_is_permanent(fcm):
    customer = CustomerFactory()
    only = device(customer, "gone")
    fcm.answers["gone"] = (404, fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
    backend = channel_get("push")

    with pytest.raises(PermanentChannelError):
        backend.send(backend.build_payload(rendered=RENDERED, to=[only], metadata={}, links={}))

    only.refresh_from_db()
    assert only.active is False


@pytest.mark.parametrize(
    ("status", "status_text", "error_code"),
    [(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), (500, "INTERNAL", "INTERNAL"), (503, "UNAVAILABLE", "UNAVAILABLE")],
)
def test_rate_limits_and_server_errors_are_transient_and_keep_the_device(fcm, status, status_text, error_code):
    only = device(CustomerFactory(), "busy")
    fcm.answers["busy"] = (status, fcm_error(status, status_text, error_code))
    backend = channel_get("push")

    with pytest.raises(TransientChannelError):
        backend.send(backend.build_payload(rendered=RENDERED, to=[only], metadata={}, links={}))

    only.refresh_from_db()
    assert only.active is True


def test_an_invalid_message_is_permanent_and_keeps_the_device(fcm):
    only = device(CustomerFactory(), "tok")
    fcm.answers["tok"] = (400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"))
    backend = channel_get("push")
    with pytest.raises(PermanentChannelError):
        backend.send(backend.build_payload(rendered=RENDERED, to=[only], metadata={}, links={}))
    only.refresh_from_db()
    assert only.active is True


def test_several_payloads_each_get_their_outcome(fcm, django_assert_max_num_queries):
    backend = channel_get("push")
    customers = [CustomerFactory() for _ in range(3)]
    devices = [device(customer, f"tok-{n}") for n, customer in enumerate(customers)]
    fcm.answers["tok-1"] = (404, fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
    payloads = [backend.build_payload(rendered=RENDERED, to=[gcm], metadata={}, links={}) for gcm in devices]

    with django_assert_max_num_queries(1):  # one update deactivates every gone device
        outcomes = backend.send_many(payloads)

    assert [type(outcome).__name__ for outcome in outcomes] == ["SendResult", "PermanentChannelError", "SendResult"]


def test_without_credentials_nothing_is_sent(settings, http_stub, monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    settings.FCM_CREDENTIALS_FILE = ""
    only = device(CustomerFactory(), "tok")
    backend = channel_get("push")
    with pytest.raises(ChannelNotConfiguredError):
        backend.send(backend.build_payload(rendered=RENDERED, to=[only], metadata={}, links={}))
    assert http_stub.seen == []


def test_push_test_send_goes_to_every_active_device_of_the_user(fcm):
    user = UserFactory()
    device(token="staff-1", user=user)
    device(token="staff-2", user=user)
    device(token="staff-old", user=user, active=False)

    label = variant_test_send(variant=PushVariantFactory(), user=user, customer=CustomerFactory(first_name="Ann"))

    assert label == "2 device(s)"
    messages = fcm_messages(fcm)
    assert sorted(message["token"] for message in messages) == ["staff-1", "staff-2"]
    assert {message["notification"]["title"] for message in messages} == {"Hi Ann"}
    assert {message["data"]["test_send"] for message in messages} == {"1"}


def test_fcm_quota_exhaustion_carries_its_retry_after_and_is_marked_throttled(fcm):
    customer = CustomerFactory()
    phone, tablet = device(customer, "busy-1"), device(customer, "busy-2")
    for token, wait in (("busy-1", "20"), ("busy-2", "45")):
        fcm.answers[token] = (429, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), {"Retry-After": wait})
    backend = channel_get("push")
    payload = backend.build_payload(rendered=RENDERED, to=[phone, tablet], metadata={}, links={})

    [outcome] = backend.send_many([payload])

    assert isinstance(outcome, TransientChannelError)
    assert (outcome.retry_after, outcome.throttled) == (45.0, True)
    assert (backend.rate_limit_key(payload), backend.rate_cost(payload)) == ("fcm", 2)
