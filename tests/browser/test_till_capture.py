"""A clerk at a real browser: log in, capture a customer with email consent, capture them again."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from customers.models import ConsentStatus, Customer
from customers.selectors import consent_states_for
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def log_in(page, live_server, clerk):
    page.goto(f"{live_server.url}/till/login/")
    page.get_by_label("Username").fill(clerk.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/till/$"))


def test_clerk_captures_a_new_customer_then_the_same_email_updates_it(
    page, live_server, clerk, store, disclosures, celery_eager
):
    log_in(page, live_server, clerk)
    expect(page.get_by_test_id("store-name")).to_have_text(store.name)
    expect(page.get_by_test_id("disclosure-email")).to_have_text(disclosures["email"].text)
    expect(page.locator("#id_consent_email")).not_to_be_checked()
    expect(page.locator("#id_consent_sms")).not_to_be_checked()

    page.get_by_label("Email", exact=True).fill("Ana.Lopez@Example.com")
    page.get_by_label("First name").fill("Ana")
    page.locator("#id_consent_email").check()
    page.get_by_role("button", name="Save").click()

    done = page.get_by_test_id("capture-done")
    expect(done).to_contain_text("New customer saved")
    expect(page.get_by_test_id("consent-email")).to_have_text("Pending confirmation")
    expect(done).to_contain_text("We sent a confirmation email")
    customer = Customer.objects.get()
    assert consent_states_for(customer)["email"] == ConsentStatus.PENDING
    assert [m.to for m in mail.outbox] == [["Ana.Lopez@example.com"]]

    page.get_by_role("link", name="Next customer").click()
    page.get_by_label("Email", exact=True).fill("  ana.lopez@EXAMPLE.com ")
    page.get_by_label("Email", exact=True).press("Tab")  # the look-up runs when the field changes
    match = page.locator("#match")
    expect(match).to_contain_text("Existing customer: Ana")
    expect(match).to_contain_text("A***@e***.com")
    expect(match).not_to_contain_text("Lopez")
    page.get_by_label("First name").fill("Anita")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_test_id("capture-done")).to_contain_text("Customer updated")
    assert Customer.objects.count() == 1
    customer.refresh_from_db()
    assert customer.first_name == "Anita"
    assert customer.email == "Ana.Lopez@example.com"


def test_the_capture_page_fits_a_phone(page, live_server, clerk, disclosures, tmp_path):
    page.set_viewport_size(PHONE)
    log_in(page, live_server, clerk)
    page.get_by_label("Email", exact=True).fill("ana@gmial.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("email-suggestion")).to_contain_text("ana@gmail.com")
    page.screenshot(path=str(tmp_path / "till-capture-390x844.png"), full_page=True)

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for locator in (
        page.get_by_label("Email", exact=True),
        page.locator("#id_consent_sms"),
        page.get_by_role("button", name="Save"),
    ):
        box = locator.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
    # Touch targets a thumb can hit.
    assert page.get_by_role("button", name="Save").bounding_box()["height"] >= 40
    assert page.locator("#id_consent_email").bounding_box()["height"] >= 20

    # The hint's buttons are readable, not white on white.
    for name in ("Use it", "Keep as typed"):
        button = page.get_by_role("button", name=name)
        expect(button).to_be_visible()
        assert button.evaluate("el => getComputedStyle(el).color") not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")

    page.get_by_role("button", name="Use it").click()
    expect(page.get_by_label("Email", exact=True)).to_have_value("ana@gmail.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("capture-done")).to_contain_text("New customer saved")
    assert Customer.objects.get().email == "ana@gmail.com"
    page.screenshot(path=str(tmp_path / "till-done-390x844.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
