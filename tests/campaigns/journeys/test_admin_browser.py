"""A marketer at a real browser builds a two-step welcome journey in the admin and sees its diagram."""

import importlib.util
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from campaigns.models import Journey, JourneyVersion
from tests.factories import MarketingUserFactory
from tests.factories.campaigns import EmailVariantFactory, MessageFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


def _engine_installed() -> bool:
    try:
        return importlib.util.find_spec("campaigns.journeys.services") is not None
    except ImportError:
        return False


def _log_in(page, live_server, user, next_url):
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def _build_two_step_welcome(page, *, trigger: str, message_name: str) -> None:
    """Fill the editor: a send, then a two-day wait, using only the page's forms and buttons."""
    page.fill("#id_name", "Welcome")
    page.select_option("#id_trigger", trigger)
    page.select_option("select[name=add_kind-start]", "send")
    page.get_by_role("button", name="Add step", exact=True).click()
    page.select_option("#id_step-0-message", label=message_name)
    page.select_option("select[name=add_kind-send-1]", "wait")
    page.get_by_role("button", name="Add step after").first.click()
    expect(page.locator(".jr-step")).to_have_count(2)
    page.fill("#id_step-1-wait_amount", "2")
    page.select_option("#id_step-1-wait_unit", "days")
    page.locator("input[name=_save].default").click()


def test_marketer_builds_a_two_step_welcome_journey_and_sees_the_diagram(live_server, page):
    page.set_viewport_size(DESKTOP)
    user = MarketingUserFactory()
    message = MessageFactory(name="Welcome aboard")
    EmailVariantFactory(message=message)
    _log_in(page, live_server, user, "/admin/campaigns/journey/add/")

    # the trigger's own parameters only (progressive enhancement): the days box belongs to other triggers
    page.select_option("#id_trigger", "consent_confirmed")
    expect(page.locator("#id_consent_channel")).to_be_visible()
    expect(page.locator("#id_days")).to_be_hidden()
    _build_two_step_welcome(page, trigger="consent_confirmed", message_name="Welcome aboard")

    expect(page.locator(".messagelist")).to_contain_text("saved")
    journey = Journey.objects.get(name="Welcome")
    assert JourneyVersion.objects.get(journey=journey).steps == [
        {"key": "send-1", "kind": "send", "message": message.pk, "next": "wait-1"},
        {"key": "wait-1", "kind": "wait", "hours": 48},
    ]
    diagram = page.locator("#journey-diagram svg")
    expect(diagram).to_be_visible()
    expect(diagram.locator("g.step")).to_have_count(2)
    expect(diagram).to_contain_text("Send “Welcome aboard”")
    expect(diagram).to_contain_text("Wait 2 days")
    expect(diagram).to_contain_text("0 waiting · 0 passed")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#journey-diagram").screenshot(path=str(SCREENSHOTS / "journey-diagram.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]


def test_published_welcome_journey_sends_after_a_till_capture_and_shows_the_customer_on_step_two(
    live_server, page, settings, store, clerk, disclosures, celery_eager
):
    """Acceptance: build, publish, capture at the till, advance time, mail in the outbox, customer on step 2."""
    import datetime as dt

    import time_machine
    from django.utils import timezone

    from campaigns.delivery.sweeper import deliveries_sweep
    from campaigns.journeys.tick import journeys_tick
    from campaigns.models import Enrolment, FrequencyRule, OutboxMessage, QuietHoursRule
    from customers.models import ConsentState, ConsentStatus, Customer

    settings.PUBLIC_BASE_URL = live_server.url
    QuietHoursRule.objects.all().delete()  # independent of the hour the test runs at
    FrequencyRule.objects.all().delete()
    page.set_viewport_size(DESKTOP)
    user = MarketingUserFactory()
    user.is_superuser = True
    user.save()
    message = MessageFactory(name="Welcome aboard")
    EmailVariantFactory(message=message, subject="Welcome, {{ first_name }}")

    _log_in(page, live_server, user, "/admin/campaigns/journey/add/")
    _build_two_step_welcome(page, trigger="first_capture", message_name="Welcome aboard")
    expect(page.locator(".messagelist")).to_contain_text("saved")
    page.locator("input[name=_publish]").click()
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".messagelist")).to_contain_text("published")
    journey = Journey.objects.get(name="Welcome")
    assert journey.live_version_id is not None

    # a clerk captures a customer at the till, with email consent the customer then confirms
    till = page.context.browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # the clerk's own
    till.goto(f"{live_server.url}/till/login/")
    till.get_by_label("Username").fill(clerk.username)
    till.get_by_label("Password").fill(PASSWORD)
    till.get_by_role("button", name="Log in").click()
    till.get_by_label("Email", exact=True).fill("ana@example.com")
    till.get_by_label("First name").fill("Ana")
    till.locator("#id_consent_email").check()
    till.get_by_role("button", name="Save").click()
    expect(till.get_by_test_id("capture-done")).to_contain_text("New customer saved")
    customer = Customer.objects.get(email="ana@example.com")
    ConsentState.objects.filter(customer=customer, channel="email").update(
        status=ConsentStatus.GRANTED, confirmed_at=timezone.now()
    )

    # time passes: the minutely tick enrols and runs the first step, the delivery engine sends it
    tick = journeys_tick
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5), tick=False):
        tick(now=timezone.now())
        tick(now=timezone.now())
        deliveries_sweep(now=timezone.now())

    mail = OutboxMessage.objects.get(to="ana@example.com")
    assert mail.subject == "Welcome, Ana"
    enrolment = Enrolment.objects.get(journey=journey, customer=customer)
    assert enrolment.step_key == "wait-1"

    page.goto(f"{live_server.url}/admin/campaigns/journey/{journey.pk}/change/")
    wait_box = page.locator("#journey-diagram g.step[data-key='wait-1']")
    expect(wait_box).to_contain_text("1 waiting")
    expect(page.locator("#journey-diagram g.step[data-key='send-1']")).to_contain_text(re.compile(r"1 passed"))
