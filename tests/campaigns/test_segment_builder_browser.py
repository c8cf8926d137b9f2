"""A marketer builds a nested segment with the rule builder in Chromium, watches its count, and saves it."""

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Segment
from customers.models import Purchase
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import LoyaltyAccountFactory, TierFactory

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _bought(customer, days_ago: int) -> None:
    Purchase.objects.create(
        customer=customer, channel="online", source="online_shop", external_ref=f"R-{customer.pk}",
        amount=Decimal(20), occurred_at=timezone.now() - timedelta(days=days_ago),
    )


def test_build_a_nested_segment_and_see_its_count(live_server, page):
    # given North and South stores, a Gold tier, and five customers of whom two fit
    north = StoreFactory(code="harbour", name="Harbour", region="North")
    south = StoreFactory(code="mall", name="Mall", region="South")
    gold = TierFactory(name="Gold", rank=3)
    TierFactory(name="Silver", rank=2, programme=gold.programme)
    _bought(CustomerFactory(first_name="Ann", home_store=north), days_ago=10)  # fits: recent buyer
    LoyaltyAccountFactory(customer=CustomerFactory(first_name="Bob", home_store=north), tier=gold)  # fits: Gold
    _bought(CustomerFactory(first_name="", home_store=north), days_ago=5)  # no first name
    _bought(CustomerFactory(first_name="Sue", home_store=south), days_ago=5)  # South
    _bought(CustomerFactory(first_name="Eve", home_store=north), days_ago=200)  # too long ago
    user = MarketingUserFactory(email="marketer@staff.example.com")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/segment/add/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("h1")).to_contain_text("Add segment")
    page.fill("#id_name", "Northern regulars")
    count = page.locator("#rb-count")

    # when the marketer builds region North AND (bought within 90 days OR tier Gold) AND NONE(first name not set)
    top = page.locator('fieldset[data-path="0"] > .rb-group-actions')
    top.locator(".rb-add-rule").click()
    page.select_option('select[name="rb-0.0-field"]', label="Home store's region")
    page.locator('[data-path="0.0"]').get_by_label("North").check()
    expect(count).to_have_text(re.compile(r"^4 customers"))

    top.locator(".rb-add-group").click()
    page.select_option('select[name="rb-0.1-match"]', "any")
    page.select_option('select[name="rb-0.1.0-field"]', label="Bought")
    page.fill('input[name="rb-0.1.0-days"]', "90")
    page.locator('fieldset[data-path="0.1"] > .rb-group-actions .rb-add-rule').click()
    page.select_option('select[name="rb-0.1.1-field"]', label="Tier")
    page.locator('[data-path="0.1.1"]').get_by_label("Gold").check()
    expect(count).to_have_text(re.compile(r"^3 customers"))  # the nameless buyer still counts

    top.locator(".rb-add-group").click()
    page.select_option('select[name="rb-0.2-match"]', "none")
    page.select_option('select[name="rb-0.2.0-field"]', label="First name")
    page.select_option('select[name="rb-0.2.0-op"]', "is_not_set")
    expect(page.locator('[data-path="0.2.0"] .rb-value')).to_be_hidden()  # "is not set" takes no value

    # then the count follows every change
    expect(count).to_have_text(re.compile(r"^2 customers; reachable by email"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "segment-builder.png"), full_page=True)

    # and saving stores exactly the JSON the rules grammar reads
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    assert Segment.objects.get(name="Northern regulars").rules == {"match": "all", "rules": [
        {"type": "region", "op": "in", "values": ["North"]},
        {"match": "any", "rules": [
            {"type": "purchase", "metric": "recency", "op": "within", "days": 90, "channel": "any"},
            {"type": "loyalty", "field": "tier", "op": "in", "values": [gold.pk]},
        ]},
        {"match": "none", "rules": [{"type": "profile", "field": "first_name", "op": "is_not_set"}]},
    ]}
