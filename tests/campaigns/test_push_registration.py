"""Web push from the preference centre: the key and worker served, a subscription registered for the link's
customer with push consent, bad input refused, and a device the push service says is gone deactivated."""

import base64
import json
from urllib.parse import urlparse

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from push_notifications.models import WebPushDevice

from campaigns.links import message_links
from campaigns.models import CustomerWebPushDevice
from campaigns.services.push_devices import InvalidSubscription, subscription_parse
from customers.models import ConsentEvidence, ConsentState
from tests.factories import CustomerFactory, DisclosureFactory

pytestmark = pytest.mark.django_db

ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc123"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _browser_keys():
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": _b64(point), "auth": _b64(b"0123456789abcdef")}


@pytest.fixture
def push_disclosure():
    return DisclosureFactory(channel="push", version=1, text="Offers and news as notifications in this browser.")


@pytest.fixture
def customer():
    customer = CustomerFactory()
    ConsentState.objects.create(customer=customer, channel="email", status="granted")
    return customer


def _token(customer):
    url = message_links(customer=customer, channel="email", source="delivery:5", cause="campaign:2")["preferences_url"]
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


def _subscribe(token, disclosure, *, endpoint=ENDPOINT, keys=None, agent="Mozilla/5.0 Chrome/126.0"):
    body = {"subscription": {"endpoint": endpoint, "keys": keys or _browser_keys()}, "disclosure": disclosure.pk}
    return Client(enforce_csrf_checks=True).post(
        f"/m/push/subscribe/{token}/", json.dumps(body), content_type="application/json", HTTP_USER_AGENT=agent
    )


def test_the_page_offers_push_only_with_a_key_and_hides_it_until_the_script_shows_it(
    client, customer, push_disclosure, settings
):
    url = f"/c/p/{_token(customer)}/"
    settings.WEBPUSH_VAPID_PUBLIC_KEY = ""
    assert 'id="push"' not in client.get(url).content.decode()
    settings.WEBPUSH_VAPID_PUBLIC_KEY = "BPublicKeyForTests"
    content = client.get(url).content.decode()
    assert '<section id="push" hidden' in content
    assert 'data-vapid-key="BPublicKeyForTests"' in content
    token = url.rstrip("/").rsplit("/", 1)[-1]
    assert f'data-subscribe-url="/m/push/subscribe/{token}/"' in content
    assert push_disclosure.text in content


def test_the_service_worker_is_served_as_javascript(client):
    response = client.get("/m/push/worker.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "showNotification" in response.content.decode()


def test_a_subscription_registers_a_web_push_device_with_push_consent(customer, push_disclosure):
    response = _subscribe(_token(customer), push_disclosure)
    assert response.status_code == 201
    link = CustomerWebPushDevice.objects.select_related("device").get()
    assert (link.customer_id, link.device.registration_id, link.device.active) == (customer.pk, ENDPOINT, True)
    assert link.device.browser == "CHROME"
    assert ConsentState.objects.get(customer=customer, channel="push").status == "granted"
    grant = ConsentEvidence.objects.get(customer=customer, channel="push")
    assert (grant.method, grant.disclosure_id, grant.source_reference) == (
        "preference_centre",
        push_disclosure.pk,
        "campaign:2 delivery:5",
    )


def test_subscribing_again_reactivates_the_same_device_and_another_customer_takes_it_over(customer, push_disclosure):
    _subscribe(_token(customer), push_disclosure)
    WebPushDevice.objects.update(active=False)
    _subscribe(_token(customer), push_disclosure)
    assert WebPushDevice.objects.get().active
    other = CustomerFactory()
    _subscribe(_token(other), push_disclosure)
    assert WebPushDevice.objects.count() == 1
    assert CustomerWebPushDevice.objects.get().customer_id == other.pk


@pytest.mark.parametrize(
    ("endpoint", "keys"),
    [
        ("http://push.example/abc", None),  # not https
        ("https://user:pw@push.example/abc", None),
        (ENDPOINT, {"p256dh": "short", "auth": _b64(b"0123456789abcdef")}),
        (ENDPOINT, {"p256dh": "!!notbase64!!", "auth": _b64(b"0123456789abcdef")}),
        (ENDPOINT, {"auth": _b64(b"0123456789abcdef")}),
        ("https://push.example/" + "a" * 1000, None),
    ],
)
def test_a_bad_subscription_is_refused_and_stores_nothing(customer, push_disclosure, endpoint, keys):
    response = _subscribe(_token(customer), push_disclosure, endpoint=endpoint, keys=keys)
    assert response.status_code == 400
    assert not WebPushDevice.objects.exists()
    assert not ConsentEvidence.objects.filter(channel="push").exists()


def test_a_bad_or_other_purpose_token_registers_nothing(customer, push_disclosure):
    unsubscribe = urlparse(message_links(customer=customer, channel="email")["unsubscribe_url"]).path
    for token in ("garbage", unsubscribe.rstrip("/").rsplit("/", 1)[-1]):
        assert _subscribe(token, push_disclosure).status_code == 404
    assert not WebPushDevice.objects.exists()


def test_an_email_disclosure_does_not_grant_push(customer):
    email_disclosure = DisclosureFactory(channel="email", version=1, text="Email me.")
    assert _subscribe(_token(customer), email_disclosure).status_code == 400
    assert not WebPushDevice.objects.exists()


def test_subscription_parse_accepts_what_browsers_send():
    keys = _browser_keys()
    parsed = subscription_parse({"endpoint": ENDPOINT, "keys": keys, "expirationTime": None})
    assert (parsed.endpoint, parsed.p256dh, parsed.auth) == (ENDPOINT, keys["p256dh"], keys["auth"])
    with pytest.raises(InvalidSubscription):
        subscription_parse("not a dict")


# --- a device the push service says is gone -------------------------------------------------------------


@pytest.fixture
def vapid(monkeypatch):
    from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS

    private = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, "WP_PRIVATE_KEY", _b64(private))
    monkeypatch.setitem(PUSH_NOTIFICATIONS_SETTINGS, "WP_CLAIMS", {"sub": "mailto:ops@tandem.example"})


@pytest.mark.parametrize(("status", "active"), [(201, True), (404, False), (410, False)])
def test_a_device_is_deactivated_when_the_push_service_answers_404_or_410(
    customer, push_disclosure, http_stub, vapid, status, active
):
    # given a registered browser subscription
    _subscribe(_token(customer), push_disclosure)
    device = WebPushDevice.objects.get()
    # when a push to it gets this answer from the push service (through pywebpush, only HTTP stubbed)
    http_stub.add("POST", r"^https://fcm\.googleapis\.com/fcm/send/abc123$", status=status, body=b"")
    device.send_message(json.dumps({"title": "Hi", "body": "Offer"}))
    # then the device is deactivated only when the subscription is gone
    device.refresh_from_db()
    assert device.active is active
    sent = http_stub.to("abc123")[0]
    assert sent.headers["Content-Encoding"] == "aes128gcm"
    assert sent.headers["Authorization"].startswith("vapid t=")
