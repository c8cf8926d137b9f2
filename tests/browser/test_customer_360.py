"""A marketer at 1,280 x 900 in Chromium: the customer list shows consent without scrolling sideways, and a
customer's page answers consent, loyalty and last purchase in the first screen."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from customers.models import Channel, ConsentMethod
from customers.services.consent import Evidence, consent_grant
from tests.customers.person_record import person_with_everything
from tests.factories import CustomerFactory, DisclosureFactory, MarketingUserFactory, StoreFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _log_in(browser, live_server, user, next_url):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    return page


def _within_viewport(box) -> bool:
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= DESKTOP["width"]
        and box["y"] + box["height"] <= DESKTOP["height"]
    )


def test_customer_360_header_is_in_the_first_screen(browser, live_server):
    disclosures = {"email": DisclosureFactory(channel="email", version=1, text="Email me news.")}
    record = person_with_everything(disclosures=disclosures)
    ben = record["customer"]
    marketer = MarketingUserFactory()

    page = _log_in(browser, live_server, marketer, f"/admin/customers/customer/{ben.public_id}/change/")

    consent = page.get_by_test_id("c360-consent")
    expect(page.get_by_test_id("consent-email")).to_contain_text("Pending confirmation")
    expect(page.get_by_test_id("consent-sms")).to_contain_text("Withdrawn")
    expect(page.get_by_test_id("c360-loyalty")).to_contain_text("Silver")
    expect(page.get_by_test_id("last-in-store")).to_contain_text("25.50 USD")
    expect(page.get_by_test_id("last-online")).to_contain_text("40.00 USD")
    for locator in (consent, page.get_by_test_id("c360-loyalty"), page.get_by_test_id("c360-purchases")):
        box = locator.bounding_box()
        assert _within_viewport(box), box
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "customer-360.png"))

    # The timeline filter is a plain link: no script needed.
    page.click("#timeline a[data-kind=purchase]")
    expect(page.locator("#timeline .timeline > li")).to_have_count(3)
    expect(page.locator("#timeline a[aria-current=true]")).to_contain_text("Purchases (3)")


def test_customer_list_shows_consent_at_1280(browser, live_server):
    marketer = MarketingUserFactory()
    store = StoreFactory(name="Fifth Avenue Flagship", code="nyc-5th")
    for index in range(12):
        customer = CustomerFactory(
            first_name=f"Alexandra-{index}",
            last_name="Montgomery-Featherstonehaugh",
            email=f"alexandra.montgomery.featherstonehaugh{index}@example-longdomain.com",
            phone=f"+1415555{index:04d}",
            home_store=store if index % 3 else None,
        )
        if index % 2:
            consent_grant(
                customer=customer,
                channel=Channel.EMAIL,
                evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=marketer, basis="Form"),
            )

    page = _log_in(browser, live_server, marketer, "/admin/customers/customer/")

    header = page.locator("#result_list thead th.column-consent_badges")
    expect(header).to_contain_text("Consent")
    assert _within_viewport(header.bounding_box()), header.bounding_box()
    badge = page.locator("#result_list .consent-badge").first
    assert _within_viewport(badge.bounding_box())
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    # Nor is the column cut off inside the list's own scroll box.
    results = page.locator("#changelist .results")
    page.screenshot(path=str(SCREENSHOTS / "customer-list.png"))
    widths = results.evaluate("box => [box.scrollWidth, box.clientWidth]")
    assert widths[0] <= widths[1], widths
    last_badge = page.locator("#result_list .consent-badge").nth(2).bounding_box()
    assert last_badge["x"] + last_badge["width"] <= results.bounding_box()["x"] + results.bounding_box()["width"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "customer-list.png"))
