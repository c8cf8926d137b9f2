"""A marketer builds a campaign in four steps (audience, message, schedule, review), tests it, launches it,
and watches it send on the same page."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from campaigns.delivery.launch import campaigns_dispatch_due
from campaigns.models import Campaign, Delivery, FrequencyRule, QuietHoursRule
from customers.models import ConsentState
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.campaigns import SMS_BODY, SegmentFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _shot(page, step: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"campaign-{step}.png"), full_page=True)


def _page_height(page) -> int:
    return page.evaluate("document.documentElement.scrollHeight")


def test_build_a_campaign_in_four_steps_and_launch_it(browser, live_server, celery_eager):
    # Given an audience with two customers who agreed to email, one of them reachable by text too.
    QuietHoursRule.objects.all().delete()  # independent of the hour the test runs at
    FrequencyRule.objects.all().delete()
    user = MarketingUserFactory(email="marketer@staff.example.com")
    segment = SegmentFactory(name="Everyone")
    ann = CustomerFactory(first_name="Ann", last_name="Lee", email="ann.lee@example.com", phone="+14155550150")
    bob = CustomerFactory(first_name="Bob", last_name="Stone", email="bob@example.com")
    for customer in (ann, bob):
        ConsentState.objects.create(customer=customer, channel="email", status="granted")
    ConsentState.objects.create(customer=ann, channel="sms", status="granted")
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/campaign/add/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    # Step 1, audience: who it goes to and on which channels.
    expect(page.locator("#step-audience")).to_be_visible()
    expect(page.locator("#step-message")).to_be_hidden()
    page.fill("#id_name", "Spring launch")
    page.select_option("#id_goal", "conversion")
    page.select_option("#id_kpi", "revenue")
    page.select_option("#id_include_segments_from", label=segment.name)
    page.click("#id_include_segments_add")
    page.select_option("#id_channels_0", "email")
    page.select_option("#id_channels_1", "sms")
    expect(page.locator("#reach-audience")).to_have_text("2")  # counted live, before saving
    expect(page.locator("#campaign-reach .reach-sms .reachable")).to_have_text("1")
    page.click("#step-audience #save-to-message")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    campaign = Campaign.objects.get(name="Spring launch")
    expect(page.locator("#step-message")).to_be_visible()
    expect(page.locator("#campaign-summary")).to_contain_text("Spring launch")
    expect(page.locator("#summary-audience")).to_have_text("2")
    expect(page.locator("#summary-problems")).to_contain_text("blocking launch")

    page.click("#tab-audience")
    expect(page.locator("#campaign-reach .reach-email .reachable")).to_have_text("2")
    expect(page.locator("#campaign-reach .reach-sms .reachable")).to_have_text("1")
    audience_height = _page_height(page)
    _shot(page, "audience")
    assert audience_height < 2000, audience_height

    # Step 2, message: one variant per channel, each preview beside its editor.
    page.click("#tab-message")
    add_variant = page.locator("#variants-group .add-row a")
    add_variant.click()
    add_variant.click()
    page.select_option("#id_variants-0-channel", "email")
    page.fill("#id_variants-0-subject", "Spring is here, {{ first_name }}")
    page.fill("#id_variants-0-preheader", "New season")
    page.fill("#id_variants-0-html_body", "<h1>Hello {{ first_name }}</h1><p>See you soon.</p>")
    page.select_option("#id_variants-1-channel", "sms")
    page.fill("#id_variants-1-sms_body", SMS_BODY)
    expect(page.locator("#variants-1 .sms-live-count")).to_contain_text("1 segment")
    page.click("#step-message #save-to-schedule")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(page.locator("#step-schedule")).to_be_visible()
    assert campaign.message.variants.count() == 2

    # Previews for a customer found by name, never by id.
    page.click("#tab-message")
    picker = page.locator("#campaign-previews .customer-picker-query")
    picker.fill("lee")
    page.get_by_role("option", name="Ann Lee — ann.lee@example.com · +14155550150").click()
    expect(page.locator("#step-message")).to_be_visible()
    email_preview = page.locator("#variants-0 .variant-preview")
    expect(email_preview.locator(".inbox-subject")).to_have_text("Spring is here, Ann")
    expect(page.frame_locator("#variants-0 iframe.email-frame").locator("h1")).to_have_text("Hello Ann")
    expect(page.locator("#preview-no-match")).to_have_count(0)
    expect(page.locator("#variants-1 .variant-preview .sms-bubble")).to_contain_text("Ann")
    editor, preview = page.locator("#variants-0 .variant-fields"), page.locator("#variants-0 .variant-preview")
    assert preview.bounding_box()["x"] > editor.bounding_box()["x"] + editor.bounding_box()["width"] - 1  # beside
    expect(page.locator("#summary-ready")).to_have_text("ready to launch")
    _shot(page, "message")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    summary = page.locator("#campaign-summary").bounding_box()
    assert 0 <= summary["y"] < DESKTOP["height"] - summary["height"]  # the summary stays in view

    # Step 4 first for a test send to myself, rendered for Bob (found by email).
    page.click("#tab-review")
    test_picker = page.locator("#campaign-test-send .customer-picker-query")
    test_picker.fill("bob@")
    page.get_by_role("option", name="Bob Stone — bob@example.com").click()
    page.click("#campaign-test-send-button")
    expect(page.locator(".messagelist")).to_contain_text("Test sent to marketer@staff.example.com")
    expect(page.locator("#step-review")).to_be_visible()

    # Step 3, schedule: now, with the forecast and its checks.
    page.click("#tab-schedule")
    expect(page.locator("#campaign-forecast .forecast-email .reachable")).to_have_text("2")
    expect(page.locator("#campaign-forecast")).to_contain_text("Checks applied")
    page.check("input[name=timing][value=now]")
    _shot(page, "schedule")

    # Step 4, review and launch.
    page.click("#to-review")
    expect(page.locator("#review-when")).to_contain_text("now", ignore_case=True)
    expect(page.locator("#campaign-review")).to_contain_text("Everyone")
    _shot(page, "review")
    page.click("#campaign-launch-button")
    expect(page.locator(".messagelist")).to_contain_text("The campaign is now scheduled.")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED

    # The dispatcher launches it; the last step now shows it sending, then its results.
    assert campaigns_dispatch_due() == [campaign.pk]
    campaign.refresh_from_db()
    assert campaign.status in (Campaign.Status.SENDING, Campaign.Status.SENT)
    sent = set(Delivery.objects.filter(cause_id=campaign.pk, status="sent").values_list("customer_id", "channel"))
    assert sent == {(ann.pk, "email"), (ann.pk, "sms"), (bob.pk, "email")}
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    expect(page.locator("#campaign-progress")).to_be_visible()
    expect(page.locator("#campaign-health")).to_be_visible()
    expect(page.locator(".campaign-steps [aria-current=step]")).to_contain_text("Results")
    expect(page.locator("#campaign-progress .progress-sent")).to_have_text("3")
    _shot(page, "results")


def test_steps_work_without_javascript(browser, live_server):
    from tests.factories.campaigns import CampaignFactory, EmailVariantFactory

    user = MarketingUserFactory()
    campaign = CampaignFactory(channels="email", include=[SegmentFactory()])
    EmailVariantFactory(message=campaign.message)
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/campaign/{campaign.pk}/change/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#step-audience")).to_be_visible()
    expect(page.locator("#step-schedule")).to_be_hidden()

    page.click("#tab-schedule")  # a plain #step-schedule link: no reload, the form keeps what was typed

    expect(page.locator("#step-schedule")).to_be_visible()
    expect(page.locator("#step-audience")).to_be_hidden()
    page.click("#tab-message")
    expect(page.locator("#step-message")).to_be_visible()
    expect(page.locator("#variants-0 .variant-preview .inbox-subject")).to_be_visible()
    context.close()
