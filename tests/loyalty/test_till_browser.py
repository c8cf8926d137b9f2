"""At the till in a browser: look up a member by phone, record a purchase, redeem a code."""

import re

import pytest
from playwright.sync_api import expect

from loyalty.models import Redemption
from loyalty.services import account_enrol, coupon_code_create
from tests.factories import ClerkFactory, CustomerFactory, StoreFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import BonusWindowFactory, OfferFactory, ProgrammeFactory


@pytest.mark.browser
def test_clerk_looks_up_by_phone_records_a_purchase_and_redeems_a_code(live_server, page):
    store = StoreFactory(code="nyc-5th", name="Fifth Avenue", time_zone="America/New_York")
    clerk = ClerkFactory(store=store)
    programme = ProgrammeFactory()
    BonusWindowFactory(programme=programme, name="Double days")
    customer = CustomerFactory(first_name="Ada", phone="+14155550123")
    account, _ = account_enrol(customer=customer, programme=programme)
    coupon_code_create(offer=OfferFactory(programme=programme, name="Five off"), code="FIVEOFF", max_uses=1)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/till/login/?next=/till/loyalty/")
    page.fill("input[name=username]", clerk.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    page.fill("#id_query", "(415) 555-0123")
    page.click("text=Find member")
    expect(page.get_by_test_id("member")).to_contain_text("Ada")
    expect(page.get_by_test_id("balance")).to_have_text("0")

    page.fill("#id_receipt", "R-2001")
    page.fill("#id_amount", "42.50")
    page.fill("#id_discount", "2.50")
    page.click("text=Record and earn")
    expect(page.locator(".card.success")).to_contain_text(
        "Receipt R-2001: 80 points earned (40 + bonus: Double days +40)"
    )
    expect(page.get_by_test_id("balance")).to_have_text("80")

    page.fill("#id_code", "fiveoff")
    page.fill("#id_coupon_order_reference", "R-2001")
    page.click("text=Check code")
    expect(page.get_by_test_id("coupon-gives")).to_contain_text("5.00 USD off")
    page.click("text=Confirm redemption")
    expect(page.locator(".card.success")).to_contain_text(re.compile(r"Code FIVEOFF redeemed: 5\.00 USD off"))

    page.fill("#id_code", "FIVEOFF")
    page.fill("#id_coupon_order_reference", "R-2002")
    page.click("text=Check code")
    expect(page.get_by_role("alert")).to_contain_text("already been used")

    redemption = Redemption.objects.get()
    assert (redemption.store, redemption.clerk, redemption.order_reference) == (store, clerk, "R-2001")
    account.refresh_from_db()
    assert account.points_balance == 80


@pytest.mark.browser
def test_clerk_refunds_a_receipt_after_confirming(live_server, page):
    from loyalty.services import till_purchase_record

    store = StoreFactory(code="nyc-5th", name="Fifth Avenue", time_zone="America/New_York")
    clerk = ClerkFactory(store=store)
    programme = ProgrammeFactory()
    account, _ = account_enrol(customer=CustomerFactory(first_name="Ada"), programme=programme)
    till_purchase_record(account=account, store=store, clerk=clerk, receipt="R-3001", amount="25.00")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/till/login/?next=/till/loyalty/refund/")
    page.fill("input[name=username]", clerk.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    page.fill("#id_refund_receipt", "R-3001")
    page.click("text=Find purchase")
    expect(page.get_by_test_id("refund-earned")).to_have_text("25 points")
    expect(page.get_by_test_id("refund-state")).to_contain_text("Take back 25 points")
    page.click("text=Confirm refund")
    expect(page.locator(".card.success")).to_contain_text("Receipt R-3001 refunded: 25 points taken back")
    expect(page.get_by_test_id("balance")).to_have_text("0")
    account.refresh_from_db()
    assert account.points_balance == 0
