"""A marketer composes a campaign with email, SMS and push variants in the admin and sees the previews."""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.campaigns import SMS_BODY, SegmentFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.browser


def test_compose_campaign_with_three_variants_and_preview(live_server, page):
    user = MarketingUserFactory(email="marketer@staff.example.com")
    segment = SegmentFactory(name="Everyone")
    customer = CustomerFactory(first_name="", home_store=StoreFactory(name="Fifth Avenue"))  # no first name

    page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/campaign/add/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("h1")).to_contain_text("Add campaign")

    page.fill("#id_name", "Spring launch")
    page.select_option("#id_goal", "conversion")
    page.select_option("#id_kpi", "revenue")
    page.select_option("#id_include_segments_from", label=segment.name)
    page.click("#id_include_segments_add")
    page.select_option("#id_channels_0", "email")
    page.select_option("#id_channels_1", "sms")
    page.select_option("#id_channels_2", "push")

    page.click("#tab-message")
    add_variant = page.locator("#variants-group .add-row a")
    for _ in range(3):
        add_variant.click()

    page.select_option("#id_variants-0-channel", "email")
    page.fill("#id_variants-0-subject", "Spring is here, {{ first_name }}")
    page.fill("#id_variants-0-preheader", "New season at {{ store_name }}")
    page.fill("#id_variants-0-html_body", "<h1>Hello {{ first_name }}</h1><p>See you at {{ store_name }}.</p>")
    expect(page.locator("#id_variants-0-sms_body")).to_be_hidden()

    page.select_option("#id_variants-1-channel", "sms")
    page.fill("#id_variants-1-sms_body", SMS_BODY)
    expect(page.locator("#variants-1 .sms-live-count")).to_contain_text("1 segment")

    page.select_option("#id_variants-2-channel", "push")
    page.fill("#id_variants-2-push_title", "Spring, {{ first_name }}!")
    page.fill("#id_variants-2-push_body", "The new collection is in store.")
    page.fill("#id_variants-2-push_url", "tandem://spring")

    page.click("#step-message button[name=_continue][value=message]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    campaign = Campaign.objects.get(name="Spring launch")
    assert campaign.message.variants.count() == 3
    assert campaign.channels == ["email", "sms", "push"]

    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/?preview_customer={customer.pk}&step=message")
    previews = page.locator("#step-message")  # each preview sits beside its variant
    expect(previews.locator(".inbox-subject")).to_have_text("Spring is here, friend")
    expect(previews.locator(".inbox-preheader")).to_contain_text("New season at Fifth Avenue")
    frame = page.frame_locator("iframe.email-frame")
    expect(frame.locator("h1")).to_have_text("Hello friend")
    expect(frame.get_by_text("Unsubscribe")).to_be_visible()
    assert page.locator("iframe.email-frame").get_attribute("sandbox") == ""
    expect(previews.locator(".sms-bubble")).to_contain_text("hi friend")
    expect(previews.locator(".sms-count")).to_contain_text(re.compile(r"1 segment\b"))
    expect(previews.locator(".push-title")).to_have_text("Spring, friend!")
    expect(page.locator("#campaign-forecast")).to_contain_text("No consent")
