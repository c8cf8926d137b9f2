"""A customer at a real browser opens the "Email preferences" link of a mail they were sent, lowers the
frequency, then leaves a kind of message; the link opened again shows what they chose."""

import html
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Campaign, Delivery, FrequencyRule, OutboxMessage, QuietHoursRule
from customers.models import CategoryOptOut, ConsentState, Customer, PreferenceEvidence
from tests.factories import CustomerFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory, SegmentFactory

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _sent_mail_preference_link(settings, live_server):
    """Send a real promotional campaign through the chunk sender and return the link its mail carries."""
    settings.PUBLIC_BASE_URL = live_server.url
    QuietHoursRule.objects.all().delete()  # independent of the hour the test runs at
    FrequencyRule.objects.all().delete()
    customer = CustomerFactory(first_name="Ana")
    ConsentState.objects.create(customer=customer, channel="email", status="granted")
    campaign = CampaignFactory(channels="email", include=[SegmentFactory()], category=Campaign.Category.PROMOTIONAL)
    EmailVariantFactory(message=campaign.message)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED, scheduled_at=timezone.now())
    campaign.refresh_from_db()
    ranges = campaign_launch(campaign=campaign).ranges
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ranges[0][0], last_id=ranges[-1][1])
    mail = OutboxMessage.objects.get(to=customer.email)
    link = re.search(r'href="([^"]*/c/p/[^"]+)"', mail.html).group(1)
    delivery = Delivery.objects.get(cause_id=campaign.pk)
    return customer, html.unescape(link), f"campaign:{campaign.pk} delivery:{delivery.pk}"


def test_customer_lowers_frequency_then_leaves_a_category_from_a_sent_mail(browser, live_server, settings, tmp_path):
    customer, link, carried_by = _sent_mail_preference_link(settings, live_server)
    # No JavaScript: the page must work without it.
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = context.new_page()

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your messages")
    expect(page.get_by_test_id("state-email")).to_have_text("Subscribed")
    expect(page.get_by_test_id("state-frequency")).to_have_text("Whenever we have news")
    expect(page.get_by_test_id("category-promotional")).to_contain_text("the kind of message you came from")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(tmp_path / "preferences-390x844.png"), full_page=True)

    page.get_by_role("button", name="At most one message a week").click()
    expect(page.get_by_test_id("notice")).to_have_text("Done: at most one message a week from now on.")
    expect(page.get_by_test_id("state-frequency")).to_have_text("At most 1 message a week")

    page.get_by_role("button", name="Stop “Promotions and offers”").click()
    expect(page.get_by_test_id("notice")).to_have_text("Done: you will get no more messages of that kind.")
    expect(page.get_by_test_id("category-promotional")).to_contain_text("you left these")

    fresh = Customer.objects.get(pk=customer.pk)
    assert fresh.max_messages_per_week == 1
    assert list(CategoryOptOut.objects.filter(customer=customer).values_list("category", flat=True)) == ["promotional"]
    assert ConsentState.objects.get(customer=customer, channel="email").status == "granted"
    assert list(PreferenceEvidence.objects.values_list("action", "source_reference")) == [
        ("frequency_set", carried_by),
        ("category_left", carried_by),
    ]

    page.goto(link)  # the same link again, later
    expect(page.get_by_test_id("notice")).to_have_count(0)
    expect(page.get_by_test_id("state-frequency")).to_have_text("At most 1 message a week")
    expect(page.get_by_test_id("category-promotional")).to_contain_text("you left these")
    expect(page.get_by_role("button", name="Get “Promotions and offers” again")).to_be_visible()
    expect(page.get_by_role("button", name="At most one message a week")).to_have_count(0)
    context.close()


def test_the_preference_page_is_usable_from_the_keyboard(page, live_server, settings):
    _customer, link, _ = _sent_mail_preference_link(settings, live_server)
    page.goto(link)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Stop “Promotions and offers”"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("category-promotional")).to_contain_text("you left these")
