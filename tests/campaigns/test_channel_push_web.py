"""Push to browsers through the real pywebpush (encryption, VAPID signing) with django-push-notifications'
settings, next to FCM through firebase-admin; only HTTP is stubbed, and the test browser decrypts what it got."""

import re
from pathlib import Path

import pytest
import requests
from push_notifications.models import GCMDevice, WebPushDevice

from campaigns.channels.push import WEBPUSH_TTL_SECONDS
from campaigns.channels.registry import channel_get
from campaigns.composer import RenderedPush
from campaigns.exceptions import ChannelNotConfiguredError, PermanentChannelError, TransientChannelError
from campaigns.models import CustomerPushDevice
from tests.campaigns.push_services import (
    APPLE,
    MOZILLA,
    VAPID_SUBJECT,
    Browser,
    fcm_service,
    vapid_claims,
    vapid_configure,
    web_push_service,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

WORKER = Path(__file__).resolve().parents[2] / "templates" / "campaigns" / "push_worker.js"
RENDERED = RenderedPush(
    title='Spring <b>"sale"</b> & more',
    body="Ünïcode, <script>alert(1)</script> stays text",
    url="https://shop.example.com/spring?a=1&b=2",
    image_url="https://cdn.example.com/spring.png",
)


@pytest.fixture
def fcm(settings, http_stub, tmp_path):
    yield from fcm_service(settings, http_stub, tmp_path)


@pytest.fixture
def vapid(monkeypatch):
    return vapid_configure(monkeypatch)


@pytest.fixture
def push_service(http_stub):
    return web_push_service(http_stub)


def app_device(customer, token):
    device = GCMDevice.objects.create(registration_id=token, cloud_message_type="FCM")
    CustomerPushDevice.objects.create(customer=customer, device=device)
    return device


def _send(backend, to, rendered=RENDERED):
    return backend.send(backend.build_payload(rendered=rendered, to=to, metadata={"delivery_id": 5}, links={}))


def test_a_browser_gets_exactly_the_json_the_service_worker_reads(push_service, vapid):
    # given a customer whose browser subscribed on Mozilla's push service
    customer = CustomerFactory()
    firefox = Browser.new(MOZILLA)
    device = firefox.device(customer)
    backend = channel_get("push")
    # when a push goes to every device of the customer
    to = backend.recipient_address(customer)
    result = _send(backend, to)
    # then the browser decrypts the title, body, link and image as text, nothing escaped or added
    assert to == [device]
    [seen] = push_service.to(MOZILLA)
    notification = firefox.read(seen)
    assert notification == {
        "title": 'Spring <b>"sale"</b> & more',
        "body": "Ünïcode, <script>alert(1)</script> stays text",
        "url": "https://shop.example.com/spring?a=1&b=2",
        "image": "https://cdn.example.com/spring.png",
    }
    # and these are the very fields the service worker shows (its data's properties, not event.data's methods)
    assert set(re.findall(r"\bdata\.(\w+)\b(?!\()", WORKER.read_text())) == set(notification)
    # signed with our VAPID key for this push service, kept while the browser is offline
    assert seen.headers["Content-Encoding"] == "aes128gcm"
    assert seen.headers["TTL"] == str(WEBPUSH_TTL_SECONDS)
    claims = vapid_claims(seen)
    assert (claims["aud"], claims["sub"]) == ("https://updates.push.services.mozilla.com", VAPID_SUBJECT)
    assert result.provider_id == f"{MOZILLA}/messages/1"
    assert result.detail["sent"] == 1


def test_each_push_service_gets_a_token_for_its_own_audience(push_service, vapid):
    customer = CustomerFactory()
    firefox, safari = Browser.new(MOZILLA), Browser.new(APPLE)
    firefox.device(customer)
    safari.device(customer)
    backend = channel_get("push")

    _send(backend, backend.recipient_address(customer), RenderedPush(title="Hi", body="Offer", url="", image_url=""))

    assert vapid_claims(push_service.to(MOZILLA)[0])["aud"] == "https://updates.push.services.mozilla.com"
    assert vapid_claims(push_service.to(APPLE)[0])["aud"] == "https://web.push.apple.com"
    assert safari.read(push_service.to(APPLE)[0]) == {"title": "Hi", "body": "Offer", "url": "", "image": ""}


def test_an_app_and_a_browser_of_the_customer_both_get_it(fcm, push_service, vapid):
    customer = CustomerFactory()
    phone = app_device(customer, "android-1")
    firefox = Browser.new(MOZILLA)
    laptop = firefox.device(customer)
    backend = channel_get("push")

    to = backend.recipient_address(customer)
    payload = backend.build_payload(rendered=RENDERED, to=to, metadata={"delivery_id": 5}, links={})
    result = backend.send(payload)

    assert to == [phone, laptop]
    [message] = [seen.json()["message"] for seen in fcm.to("/v1/projects/")]
    assert message["token"] == "android-1"
    assert firefox.read(push_service.to(MOZILLA)[0])["title"] == RENDERED.title
    assert result.detail["sent"] == 2
    # FCM's quota is the scarcer one: a payload with apps in it draws from FCM's bucket, a token per device
    assert (backend.rate_limit_key(payload), backend.rate_cost(payload)) == ("fcm", 2)


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_deactivated_and_the_app_still_gets_it(fcm, push_service, vapid, status):
    customer = CustomerFactory()
    phone = app_device(customer, "android-1")
    laptop = Browser.new(MOZILLA).device(customer)
    push_service.answers_web[MOZILLA] = (status, b"subscription expired")
    backend = channel_get("push")

    result = _send(backend, backend.recipient_address(customer))

    laptop.refresh_from_db()
    assert laptop.active is False
    assert result.detail["sent"] == 1
    assert result.detail["webpush_deactivated"] == [laptop.pk]
    assert result.detail["failed"] == {f"webpush:{laptop.pk}": f"Push service answered {status}: subscription expired"}
    assert backend.recipient_address(customer) == [phone]


def test_when_the_only_browser_is_gone_the_send_is_permanent(push_service, vapid):
    laptop = Browser.new(MOZILLA).device(CustomerFactory())
    push_service.answers_web[MOZILLA] = (410, b"")

    with pytest.raises(PermanentChannelError, match="No device is registered any more"):
        _send(channel_get("push"), [laptop])

    laptop.refresh_from_db()
    assert laptop.active is False


@pytest.mark.parametrize(("status", "throttled"), [(429, True), (500, False), (503, False)])
def test_throttling_and_server_errors_are_transient_keep_the_device_and_carry_retry_after(
    push_service, vapid, status, throttled
):
    laptop = Browser.new(MOZILLA).device(CustomerFactory())
    push_service.answers_web[MOZILLA] = (status, b"busy", {"Retry-After": "30"})
    backend = channel_get("push")
    payload = backend.build_payload(rendered=RENDERED, to=[laptop], metadata={}, links={})

    [outcome] = backend.send_many([payload])

    assert isinstance(outcome, TransientChannelError)
    assert (outcome.retry_after, outcome.throttled) == (30.0, throttled)
    assert (backend.rate_limit_key(payload), backend.rate_cost(payload)) == ("webpush", 1)
    laptop.refresh_from_db()
    assert laptop.active is True


def test_a_push_service_out_of_reach_is_transient(push_service, vapid):
    laptop = Browser.new(MOZILLA).device(CustomerFactory())

    def unreachable(seen):
        raise requests.ConnectionError("connection refused")

    push_service.add("POST", re.escape(MOZILLA), answer=unreachable)

    with pytest.raises(TransientChannelError, match="ConnectionError"):
        _send(channel_get("push"), [laptop])


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_vapid_key_is_a_configuration_error_and_keeps_the_device(push_service, vapid, status):
    laptop = Browser.new(MOZILLA).device(CustomerFactory())
    push_service.answers_web[MOZILLA] = (status, b"bad jwt")

    with pytest.raises(ChannelNotConfiguredError):
        _send(channel_get("push"), [laptop])

    laptop.refresh_from_db()
    assert laptop.active is True


def test_without_a_vapid_key_no_browser_is_contacted_but_apps_still_get_it(fcm, push_service, monkeypatch):
    from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS

    monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, "WP_PRIVATE_KEY", None)
    customer = CustomerFactory()
    app_device(customer, "android-1")
    laptop = Browser.new(MOZILLA).device(customer)
    backend = channel_get("push")

    result = _send(backend, backend.recipient_address(customer))
    with pytest.raises(ChannelNotConfiguredError, match="WEBPUSH_VAPID_PRIVATE_KEY"):
        _send(backend, [laptop])

    assert result.detail["sent"] == 1
    assert push_service.to(MOZILLA) == []


def test_without_fcm_credentials_browsers_still_get_it(settings, push_service, vapid, monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    settings.FCM_CREDENTIALS_FILE = ""
    customer = CustomerFactory()
    app_device(customer, "android-1")
    Browser.new(MOZILLA).device(customer)
    backend = channel_get("push")

    result = _send(backend, backend.recipient_address(customer))

    assert result.detail["sent"] == 1
    assert "not configured" in result.detail["failed"][str(GCMDevice.objects.get().pk)]


def test_a_notification_longer_than_web_push_carries_is_refused_before_sending(push_service, vapid):
    laptop = Browser.new(MOZILLA).device(CustomerFactory())
    long = RenderedPush(title="Hi", body="x" * 4000, url="", image_url="")

    with pytest.raises(PermanentChannelError, match="Longer than web push carries"):
        _send(channel_get("push"), [laptop], long)

    assert push_service.to(MOZILLA) == []


def test_gone_devices_of_a_batch_are_deactivated_in_one_update_per_kind(
    fcm, push_service, vapid, django_assert_max_num_queries
):
    backend = channel_get("push")
    customers = [CustomerFactory() for _ in range(4)]
    browsers = [Browser.new(f"{MOZILLA}-{n}") for n in range(4)]
    for n, (customer, browser) in enumerate(zip(customers, browsers, strict=True)):
        app_device(customer, f"tok-{n}")
        browser.device(customer)
    for n in (1, 2):
        push_service.answers_web[f"{MOZILLA}-{n}"] = (410, b"")
    fcm.answers["tok-2"] = (404, {"error": {"code": 404, "message": "gone", "status": "NOT_FOUND"}})
    payloads = [
        backend.build_payload(rendered=RENDERED, to=backend.recipient_address(customer), metadata={}, links={})
        for customer in customers
    ]

    with django_assert_max_num_queries(2):
        outcomes = backend.send_many(payloads)

    assert [type(outcome).__name__ for outcome in outcomes] == ["SendResult"] * 2 + ["PermanentChannelError"] + [
        "SendResult"
    ]
    assert set(WebPushDevice.objects.filter(active=False).values_list("registration_id", flat=True)) == {
        f"{MOZILLA}-1",
        f"{MOZILLA}-2",
    }
    assert list(GCMDevice.objects.filter(active=False).values_list("registration_id", flat=True)) == ["tok-2"]


def test_a_vapid_subject_that_is_no_contact_link_is_a_configuration_error(push_service, vapid, monkeypatch):
    from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS

    monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, "WP_CLAIMS", {"sub": "ops at tandem"})
    laptop = Browser.new(MOZILLA).device(CustomerFactory())

    with pytest.raises(ChannelNotConfiguredError, match="VAPID claims"):
        _send(channel_get("push"), [laptop])

    assert push_service.to(MOZILLA) == []
