"""The preference centre page: GET shows and changes nothing, each POST applies one choice, bad links refused."""

from datetime import timedelta
from urllib.parse import urlparse

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from campaigns.links import message_links
from customers.models import CategoryOptOut, ConsentEvidence, ConsentState, Customer, PreferenceEvidence
from tests.factories import CustomerFactory, DisclosureFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribed():
    customer = CustomerFactory(first_name="Ana", phone="+14155550123")
    for channel in ("email", "sms"):
        ConsentState.objects.create(customer=customer, channel=channel, status="granted")
    return customer


def _links(customer, **kwargs):
    kwargs.setdefault("source", "delivery:9")
    kwargs.setdefault("cause", "campaign:4")
    kwargs.setdefault("category", "promotional")
    return {
        name: urlparse(url).path for name, url in message_links(customer=customer, channel="email", **kwargs).items()
    }


def _nothing_changed(customer):
    assert set(ConsentState.objects.filter(customer=customer).values_list("status", flat=True)) == {"granted"}
    assert not ConsentEvidence.objects.exists()
    assert not PreferenceEvidence.objects.exists()
    assert not CategoryOptOut.objects.exists()
    fresh = Customer.objects.get(pk=customer.pk)
    assert (fresh.max_messages_per_week, fresh.messages_paused_until) == (None, None)


def test_message_links_carry_an_unsubscribe_link_and_a_separate_preferences_link(subscribed):
    links = _links(subscribed)
    assert links["unsubscribe_url"].startswith("/m/u/")
    assert links["preferences_url"].startswith("/c/p/")


def test_a_link_scanner_get_shows_the_state_and_changes_nothing(subscribed):
    response = Client().get(_links(subscribed)["preferences_url"])
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count("<h1") == 1
    assert 'data-testid="state-email">Subscribed<' in content
    assert "Whenever we have news" in content
    assert "the kind of message you came from" in content
    _nothing_changed(subscribed)


def test_a_head_request_changes_nothing_either(subscribed):
    Client().head(_links(subscribed)["preferences_url"])
    _nothing_changed(subscribed)


def test_each_post_applies_one_choice_with_evidence_naming_campaign_and_delivery(subscribed):
    url = _links(subscribed)["preferences_url"]
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT="Phone")  # no cookie: the token authorises

    response = client.post(url, {"choice": "weekly_one"})
    assert response.status_code == 200
    assert "At most 1 message a week" in response.content.decode()
    response = client.post(url, {"choice": "category_leave", "category": "promotional"})
    assert "Promotions and offers: you left these" in response.content.decode()

    assert Customer.objects.get(pk=subscribed.pk).max_messages_per_week == 1
    assert CategoryOptOut.objects.filter(customer=subscribed, category="promotional").exists()
    rows = list(PreferenceEvidence.objects.values_list("action", "source_reference", "user_agent", "ip_address"))
    assert rows == [
        ("frequency_set", "campaign:4 delivery:9", "Phone", "127.0.0.1"),
        ("category_left", "campaign:4 delivery:9", "Phone", "127.0.0.1"),
    ]


def test_leave_all_email_from_the_page(subscribed):
    response = Client().post(_links(subscribed)["preferences_url"], {"choice": "email_leave"})
    assert "no more marketing email" in response.content.decode()
    assert ConsentState.objects.get(customer=subscribed, channel="email").status == "withdrawn"
    assert ConsentState.objects.get(customer=subscribed, channel="sms").status == "granted"
    assert ConsentEvidence.objects.get().method == "preference_centre"


def test_a_refused_choice_says_why_and_changes_nothing(subscribed):
    response = Client().post(_links(subscribed)["preferences_url"], {"choice": "category_leave", "category": "nope"})
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    _nothing_changed(subscribed)


def test_an_unsubscribe_token_on_the_preference_page_is_refused_and_changes_nothing(subscribed):
    unsubscribe_token = _links(subscribed)["unsubscribe_url"].rstrip("/").rsplit("/", 1)[-1]
    response = Client().post(f"/c/p/{unsubscribe_token}/", {"choice": "email_leave"})
    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    _nothing_changed(subscribed)


def test_a_preference_token_on_the_unsubscribe_url_is_refused_and_changes_nothing(subscribed):
    preference_token = _links(subscribed)["preferences_url"].rstrip("/").rsplit("/", 1)[-1]
    response = Client().post(f"/m/u/{preference_token}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    _nothing_changed(subscribed)


def test_an_expired_edit_link_says_so_and_changes_nothing(subscribed):
    url = _links(subscribed)["preferences_url"]
    with time_machine.travel(timezone.now() + timedelta(days=61)):
        response = Client().post(url, {"choice": "email_leave"})
    assert response.status_code == 410
    content = response.content.decode()
    assert "This link has expired" in content
    assert "Nothing was changed" in content
    _nothing_changed(subscribed)


def test_the_unsubscribe_link_of_the_same_mail_still_works_years_later(subscribed):
    url = _links(subscribed)["unsubscribe_url"]
    with time_machine.travel(timezone.now() + timedelta(days=3 * 365)):
        response = Client().post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    entry = ConsentEvidence.objects.get(customer=subscribed)
    assert (entry.method, entry.source_reference) == ("one_click", "campaign:4 delivery:9")


@pytest.mark.parametrize("token", ["garbage", "a" * 2000, "eyJjIjoiMSJ9:1abc:xyz"])
def test_bad_tokens_get_one_generic_page(token):
    response = Client().get(f"/c/p/{token}/")
    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()


def test_switch_to_sms_offers_an_unticked_box_with_the_disclosure(subscribed):
    ConsentState.objects.filter(customer=subscribed, channel="sms").update(status="withdrawn")
    disclosure = DisclosureFactory(channel="sms", version=1, text="Texts, up to 4/month. Reply STOP to opt out.")
    url = _links(subscribed)["preferences_url"]
    content = Client().get(url).content.decode()
    assert disclosure.text in content
    assert 'name="agree" value="yes">' in content  # not checked
    assert "ending in 23" in content
    assert subscribed.phone not in content

    Client().post(url, {"choice": "switch_to_sms", "disclosure": disclosure.pk, "agree": "yes"})
    states = dict(ConsentState.objects.filter(customer=subscribed).values_list("channel", "status"))
    assert (states["email"], states["sms"]) == ("withdrawn", "granted")


def test_names_and_disclosures_are_escaped(subscribed):
    Customer.objects.filter(pk=subscribed.pk).update(first_name="<script>alert(1)</script>")
    ConsentState.objects.filter(customer=subscribed, channel="sms").update(status="withdrawn")
    DisclosureFactory(channel="sms", version=1, text="<b>bold</b> texts")
    content = Client().get(_links(subscribed)["preferences_url"]).content.decode()
    assert "<b>bold</b>" not in content
    assert "&lt;b&gt;bold&lt;/b&gt;" in content
    assert "<script>alert" not in content


def test_the_page_speaks_the_customers_language_where_it_has_texts(subscribed):
    Customer.objects.filter(pk=subscribed.pk).update(locale="fr")
    content = Client().get(_links(subscribed)["preferences_url"]).content.decode()
    assert '<html lang="fr">' in content
