"""The unsubscribe link every message carries: GET confirms, POST (RFC 8058 one-click) unsubscribes."""

from urllib.parse import urlparse

import pytest
from django.urls import reverse

from campaigns.links import message_links, preview_links
from customers.models import ConsentEvidence, ConsentState
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribed():
    customer = CustomerFactory()
    for channel in ("email", "sms"):
        ConsentState.objects.create(customer=customer, channel=channel, status="granted")
    return customer


def _path(url):
    return urlparse(url).path


def test_get_only_asks(client, subscribed):
    url = message_links(customer=subscribed, channel="email")["unsubscribe_url"]
    response = client.get(_path(url))
    assert response.status_code == 200
    assert ConsentState.objects.get(customer=subscribed, channel="email").status == "granted"


def test_one_click_post_unsubscribes_without_cookies_or_redirect(subscribed):
    from django.test import Client

    url = message_links(customer=subscribed, channel="email", source="delivery:7")["unsubscribe_url"]
    response = Client(enforce_csrf_checks=True).post(_path(url), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert ConsentState.objects.get(customer=subscribed, channel="email").status == "withdrawn"
    assert ConsentState.objects.get(customer=subscribed, channel="sms").status == "granted"
    evidence = ConsentEvidence.objects.get(customer=subscribed, action="withdraw")
    assert evidence.method == "one_click"
    assert evidence.source_reference == "delivery:7"


def test_preferences_link_stops_everything(client, subscribed):
    url = message_links(customer=subscribed, channel="email")["preferences_url"]
    client.post(_path(url))
    assert set(ConsentState.objects.filter(customer=subscribed).values_list("status", flat=True)) == {"withdrawn"}


def test_preview_links_change_nothing(client, subscribed):
    response = client.post(_path(preview_links()["unsubscribe_url"]))
    assert response.status_code == 200
    assert b"changes nothing" in response.content
    assert not ConsentEvidence.objects.exists()


@pytest.mark.parametrize("token", ["garbage", "a" * 2000])
def test_bad_tokens_get_one_generic_page(client, token):
    response = client.post(reverse("campaigns:unsubscribe", args=[token]))
    assert response.status_code == 404
    assert b"not valid" in response.content


def test_tampered_token_is_refused(client, subscribed):
    url = _path(message_links(customer=subscribed, channel="email")["unsubscribe_url"])
    response = client.post(url[:-3] + "xx/")
    assert response.status_code == 404
    assert ConsentState.objects.get(customer=subscribed, channel="email").status == "granted"


def test_guessing_tokens_is_rate_limited_but_good_links_still_work(client, subscribed, frozen_minute):
    from campaigns.views import BAD_TOKENS_PER_MINUTE

    for _ in range(BAD_TOKENS_PER_MINUTE):
        assert client.post(reverse("campaigns:unsubscribe", args=["guess"])).status_code == 404
    assert client.post(reverse("campaigns:unsubscribe", args=["guess"])).status_code == 429
    url = message_links(customer=subscribed, channel="email")["unsubscribe_url"]
    assert client.post(_path(url)).status_code == 200
    assert ConsentState.objects.get(customer=subscribed, channel="email").status == "withdrawn"
