"""On a 390x844 phone the till's answer to every submit is the first thing in view, and focused."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from loyalty.models import LoyaltyAccount
from loyalty.services import account_enrol
from tests.factories import CustomerFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import ProgrammeFactory

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _in_view(page, locator) -> None:
    """The whole box is inside the phone's screen as it stands after the submit: no scrolling needed."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None
    assert box["y"] >= 0, box
    assert box["y"] + box["height"] <= PHONE["height"], box
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"], box


def _focused(page, locator) -> None:
    assert locator.evaluate("el => el === document.activeElement")


def _log_in(page, live_server, clerk, next_path="/till/"):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/till/login/?next={next_path}")
    page.get_by_label("Username").fill(clerk.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_capture_refusal_and_a_capture_success_are_in_view_on_a_phone(
    page, live_server, clerk, disclosures, celery_eager
):
    ProgrammeFactory()
    _log_in(page, live_server, clerk)
    expect(page).to_have_url(re.compile(r"/till/$"))

    # The refusal belongs to the consent box, low on the form (below the fold before the answer moved up).
    page.get_by_label("Mobile phone").fill("+1 415 555 0123")
    page.locator("#id_consent_email").check()
    page.locator("#id_loyalty_enrol").check()
    page.get_by_role("button", name="Save").click()

    answer = page.get_by_role("alert")
    expect(answer).to_contain_text("Email consent needs an email address")
    _in_view(page, answer)
    _focused(page, answer)
    assert answer.evaluate("el => getComputedStyle(el).color") == "rgb(122, 26, 18)"  # red on pale red
    _shot(page, "till-capture-error")

    page.get_by_label("Email", exact=True).fill("ana@example.com")
    page.get_by_role("button", name="Save").click()
    done = page.get_by_test_id("capture-done")
    expect(done).to_contain_text("New customer saved")
    expect(page.get_by_role("status").first).to_contain_text("New customer saved")
    _focused(page, done)
    box = done.bounding_box()
    assert 0 <= box["y"] < PHONE["height"] / 3  # the answer starts at the top of the screen
    _shot(page, "till-capture-saved")

    account = LoyaltyAccount.objects.get()
    card = page.get_by_test_id("card-number-large")
    expect(card).to_have_text(" ".join(re.findall(r"\d{4}", account.card_number)))
    assert float(card.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")) >= 24
    assert card.bounding_box()["height"] < 2 * 24  # one line, read in groups of four
    assert card.bounding_box()["x"] + card.bounding_box()["width"] <= PHONE["width"]
    qr = page.locator("svg.card-qr")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 150  # large enough for a phone camera or a till scanner
    for name in ("Loyalty", "Refund"):
        expect(page.locator("main").get_by_role("link", name=name, exact=True)).to_be_visible()
    page.get_by_test_id("loyalty-card").scroll_into_view_if_needed()
    _shot(page, "till-capture-saved-card")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_loyalty_answers_are_in_view_on_a_phone(page, live_server, clerk):
    programme = ProgrammeFactory()
    account, _ = account_enrol(customer=CustomerFactory(first_name="Ada"), programme=programme)
    _log_in(page, live_server, clerk, next_path=f"/till/loyalty/card/{account.card_number}/")
    expect(page.get_by_test_id("member")).to_contain_text("Ada")

    # The coupon form sits well below the fold; its refusal comes back at the top.
    page.locator("#id_code").fill("NO-SUCH-CODE")
    page.locator("#id_coupon_order_reference").fill("R-1")
    page.get_by_role("button", name="Check code").click()
    answer = page.get_by_role("alert")
    expect(answer).to_contain_text("Code not accepted")
    _in_view(page, answer)
    _focused(page, answer)
    _shot(page, "till-coupon-refused")

    page.locator("#id_receipt").fill("R-2")
    page.locator("#id_amount").fill("12.00")
    page.get_by_role("button", name="Record and earn").click()
    status = page.get_by_test_id("answer")
    expect(status).to_contain_text("Receipt R-2: 12 points earned")
    expect(status).to_have_attribute("role", "status")
    _in_view(page, status)
    _focused(page, status)
    assert status.evaluate("el => getComputedStyle(el).color") == "rgb(15, 77, 43)"  # green on pale green
    _shot(page, "till-purchase-recorded")
