"""The unsubscribe link every message carries: GET confirms, POST (RFC 8058 one-click) unsubscribes."""

from datetime import timedelta
from urllib.parse import urlparse

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

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


def test_an_every_channel_link_from_older_mail_still_stops_everything(client, subscribed):
    # Mail sent before the preference centre carried such a link as "Email preferences"; it never expires.
    url = message_links(customer=subscribed, channel="all")["unsubscribe_url"]
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


def test_guessing_tokens_is_rate_limited_but_good_links_still_work(client, subscribed):
    from campaigns.views import BAD_TOKENS_PER_MINUTE

    url = message_links(customer=subscribed, channel="email")["unsubscribe_url"]
    # Rate limits count per clock minute: keep every request inside one (the link is signed before).
    with time_machine.travel(timezone.now() + timedelta(seconds=1), tick=False):
        _guess_until_limited(client, BAD_TOKENS_PER_MINUTE)
        assert client.post(_path(url)).status_code == 200
    assert ConsentState.objects.get(customer=subscribed, channel="email").status == "withdrawn"


def _guess_until_limited(client, limit):
    for _ in range(limit):
        assert client.post(reverse("campaigns:unsubscribe", args=["guess"])).status_code == 404
    assert client.post(reverse("campaigns:unsubscribe", args=["guess"])).status_code == 429


# --- the services behind the view ----------------------------------------------------------------


def _token(url):
    return _path(url).rstrip("/").rsplit("/", 1)[-1]


def test_unsubscribe_apply_withdraws_every_named_channel_with_one_click_evidence(subscribed):
    from campaigns.services.unsubscribe import unsubscribe_apply, unsubscribe_link_read

    url = message_links(customer=subscribed, channel="all")["unsubscribe_url"]
    link = unsubscribe_link_read(token=_token(url))
    assert set(link.channels) == {"email", "sms", "push"}
    unsubscribe_apply(link=link, url="https://x.example/u", ip_address="192.0.2.1", user_agent="Mail")
    states = dict(ConsentState.objects.filter(customer=subscribed).values_list("channel", "status"))
    assert states["email"] == states["sms"] == "withdrawn"
    evidence = ConsentEvidence.objects.filter(customer=subscribed, action="withdraw").first()
    assert (evidence.method, evidence.ip_address) == ("one_click", "192.0.2.1")


def test_unsubscribe_link_read_refuses_a_merged_profile_and_apply_refuses_a_preview(subscribed):
    from campaigns.services.unsubscribe import unsubscribe_apply, unsubscribe_link_read
    from customers.exceptions import InvalidToken

    url = message_links(customer=subscribed, channel="email")["unsubscribe_url"]
    preview = unsubscribe_link_read(token=_token(preview_links()["unsubscribe_url"]))
    with pytest.raises(InvalidToken):
        unsubscribe_apply(link=preview)
    type(subscribed).objects.filter(pk=subscribed.pk).update(merged_into=CustomerFactory())
    with pytest.raises(InvalidToken):
        unsubscribe_link_read(token=_token(url))
    assert ConsentState.objects.get(customer=subscribed, channel="email").status == "granted"
