"""Till pages: look-up, purchase and earn, coupon check and confirm, spending points; bad input."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from loyalty.models import LedgerEntry, Redemption
from loyalty.services import coupon_code_create, points_adjust
from tests.factories import ClerkFactory, StoreFactory
from tests.factories.customers import PASSWORD, ProductCategoryFactory
from tests.factories.loyalty import BonusWindowFactory, CouponCodeFactory, OfferFactory


@pytest.fixture
def till(client, clerk):
    client.login(username=clerk.username, password=PASSWORD)
    return client


def _url(name, account):
    return reverse(f"loyalty:{name}", args=[account.card_number])


def _state():
    return (Redemption.objects.count(), LedgerEntry.objects.count())


@pytest.mark.parametrize("query", ["+1 415 555 0123", "ADA@example.com", "{card}", "{card_spaced}"])
def test_lookup_by_phone_email_or_card(till, account, query, django_assert_max_num_queries):
    card = account.card_number
    query = query.format(card=card, card_spaced=f"{card[:4]} {card[4:8]} {card[8:12]} {card[12:]}")
    with django_assert_max_num_queries(12):
        response = till.post(reverse("loyalty:lookup"), {"query": query})
    assert response.status_code == 302
    assert response.url == _url("account", account)


def test_lookup_reads_a_local_number_in_the_country_of_the_clerks_store(client, programme):
    from loyalty.services import account_enrol
    from tests.factories import CustomerFactory

    london = StoreFactory(code="ldn", country="GB", time_zone="Europe/London")
    member, _ = account_enrol(customer=CustomerFactory(phone="+447911123456"), programme=programme)
    client.force_login(ClerkFactory(store=london))
    response = client.post(reverse("loyalty:lookup"), {"query": "07911 123456"})
    assert response.status_code == 302
    assert response.url == _url("account", member)


def test_lookup_refuses_a_wrong_check_digit(till, account):
    card = account.card_number
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    response = till.post(reverse("loyalty:lookup"), {"query": wrong})
    assert response.status_code == 400
    assert "check digit is wrong" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("+1 415 555 9999", 404, "No Tandem Rewards member found"),
        ("not a phone", 400, "That is not a phone number we can read"),
    ],
)
def test_lookup_unknown_or_malformed(till, account, query, status, message):
    response = till.post(reverse("loyalty:lookup"), {"query": query})
    assert response.status_code == status
    assert message in response.content.decode()


def test_account_page_shows_balance_and_tier_in_bounded_queries(till, account, django_assert_max_num_queries):
    points_adjust(account=account, points=120, reason="Seed", user=None, idempotency_key="s")
    ProductCategoryFactory.create_batch(5)
    with django_assert_max_num_queries(9):  # one of them reads the product categories offered as tick boxes
        response = till.get(_url("account", account))
    body = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'data-testid="balance">120<', body)
    assert "Ada" in body
    assert "+14155550123" not in body  # masked


def test_record_purchase_earns_with_bonus(till, account, programme, store, clerk, django_assert_max_num_queries):
    BonusWindowFactory(programme=programme, name="Double days")
    # Bounded: the person's lock (customers.lock_objects) is taken by the purchase and by the earning.
    with django_assert_max_num_queries(35):
        response = till.post(_url("purchase", account), {"receipt": "R-100", "amount": "30.00", "discount": "5"})
    assert response.status_code == 302
    page = till.get(response.url).content.decode()
    assert "Receipt R-100: 50 points earned (25 + bonus: Double days +25)" in page
    account.refresh_from_db()
    assert account.points_balance == 50
    entry = LedgerEntry.objects.filter(account=account).first()
    assert (entry.store, entry.acting_user, entry.purchase.store) == (store, clerk, store)
    # The same receipt again earns nothing more.
    till.post(_url("purchase", account), {"receipt": "R-100", "amount": "30.00", "discount": "5"})
    account.refresh_from_db()
    assert account.points_balance == 50


def test_record_purchase_with_the_product_categories_ticked(till, account):
    shampoo, coffee = ProductCategoryFactory(name="Shampoo"), ProductCategoryFactory(name="Coffee beans")
    ProductCategoryFactory(name="Retired", is_active=False)
    page = till.get(_url("account", account)).content.decode()
    # offered as tick boxes, active categories only
    assert re.search(rf'<input type="checkbox" name="categories" value="{shampoo.pk}"', page)
    assert "Coffee beans" in page
    assert "Retired" not in page

    response = till.post(
        _url("purchase", account), {"receipt": "R-7", "amount": "12.00", "categories": [shampoo.pk, coffee.pk]}
    )

    assert response.status_code == 302
    purchase = account.customer.purchases.get()
    assert sorted(purchase.categories.values_list("name", flat=True)) == ["Coffee beans", "Shampoo"]


def test_a_purchase_without_categories_is_still_recorded(till, account):
    ProductCategoryFactory(name="Shampoo")
    response = till.post(_url("purchase", account), {"receipt": "R-8", "amount": "12.00"})
    assert response.status_code == 302
    assert not account.customer.purchases.get().categories.exists()


def test_a_category_no_longer_offered_is_refused_and_changes_nothing(till, account):
    retired = ProductCategoryFactory(name="Retired", is_active=False)
    before = _state()
    response = till.post(_url("purchase", account), {"receipt": "R-9", "amount": "12.00", "categories": [retired.pk]})
    assert response.status_code == 400
    assert "no longer offered" in response.content.decode()
    assert _state() == before
    assert not account.customer.purchases.exists()


@pytest.mark.parametrize(
    ("amount", "discount", "message"),
    [
        ("-5", "", "must be more than zero"),
        ("0", "", "must be more than zero"),
        ("99999999", "", "implausibly large"),
        ("abc", "", "must be a number"),
        ("10", "20", "cannot exceed"),
        ("1e3", "", "no exponent"),
        ("NaN", "", "plain digits"),
        ("Infinity", "", "plain digits"),
        ("1,000", "", "thousands separators"),
        ("12.345", "", "more than two decimals"),
        ("10", "1e0", "no exponent"),
    ],
)
def test_bad_purchase_amounts_change_nothing(till, account, amount, discount, message):
    before = _state()
    response = till.post(_url("purchase", account), {"receipt": "R-1", "amount": amount, "discount": discount})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert _state() == before
    assert not account.customer.purchases.exists()


def test_coupon_check_then_confirm(till, account, programme, store, clerk, django_assert_max_num_queries):
    coupon_code_create(offer=OfferFactory(programme=programme, amount_off=Decimal("7.50")), code="WELCOME7")
    response = till.post(_url("coupon-check", account), {"code": "welcome7", "order_reference": "R-5"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "7.50 USD off" in body
    assert not Redemption.objects.exists()
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', body).group(1)
    data = {"code": "WELCOME7", "order_reference": "R-5", "order_amount": "", "nonce": nonce}
    with django_assert_max_num_queries(20):
        response = till.post(_url("coupon-confirm", account), data)
    assert response.status_code == 302
    till.post(_url("coupon-confirm", account), data)  # a double tap records nothing more
    redemption = Redemption.objects.get()
    assert (redemption.store, redemption.clerk, redemption.channel) == (store, clerk, "store")


def test_a_coupon_order_amount_in_exponent_notation_is_refused(till, account, programme):
    coupon_code_create(offer=OfferFactory(programme=programme, amount_off=Decimal("7.50")), code="WELCOME7")
    response = till.post(
        _url("coupon-check", account), {"code": "WELCOME7", "order_reference": "R-5", "order_amount": "1e2"}
    )
    assert response.status_code == 400
    assert "no exponent" in response.content.decode()
    assert not Redemption.objects.exists()


@pytest.mark.parametrize(
    ("make_code", "message"),
    [
        (lambda p, other: "NOSUCH", "Unknown code"),
        (lambda p, other: CouponCodeFactory(offer=OfferFactory(programme=p), uses=1).code, "already been used"),
        (lambda p, other: CouponCodeFactory(offer=OfferFactory(programme=p), account=other).code, "another customer"),
    ],
)
def test_bad_codes_at_the_till(till, account, programme, make_code, message):
    from loyalty.services import account_enrol
    from tests.factories import CustomerFactory

    other, _ = account_enrol(customer=CustomerFactory(), programme=programme)
    code = make_code(programme, other)
    before = _state()
    for name in ("coupon-check", "coupon-confirm"):
        response = till.post(_url(name, account), {"code": code, "order_reference": "R-5", "nonce": "abc"})
        assert response.status_code == 400
        assert message in response.content.decode()
    assert _state() == before


def test_spend_points_and_refuse_overdraft(till, account, django_assert_max_num_queries):
    points_adjust(account=account, points=100, reason="Seed", user=None, idempotency_key="s")
    with django_assert_max_num_queries(17):  # 16 + the person's lock, taken before the account's
        response = till.post(_url("points", account), {"points": "60", "order_reference": "R-9", "nonce": "n1"})
    assert response.status_code == 302
    before = _state()
    for points, message in [
        ("60", "Only 40 points"),
        ("0", "more than zero"),
        ("-3", "more than zero"),
        ("1e99", "whole number"),
    ]:
        response = till.post(_url("points", account), {"points": points, "order_reference": "R-9", "nonce": "n2"})
        assert response.status_code == 400
        assert message in response.content.decode()
    assert _state() == before
    account.refresh_from_db()
    assert account.points_balance == 40


def test_clerk_of_another_store_acts_for_their_own_store(client, account):
    other_store = StoreFactory(code="bos-1", name="Boston")
    other_clerk = ClerkFactory(store=other_store)
    client.login(username=other_clerk.username, password=PASSWORD)
    client.post(_url("purchase", account), {"receipt": "R-1", "amount": "10"})
    assert LedgerEntry.objects.get().store == other_store


def test_till_pages_need_a_store_login(client, account):
    response = client.get(_url("account", account))
    assert response.status_code == 302
    assert "/till/login/" in response.url


def test_capture_page_offers_enrolment_and_enrols_once(till, programme, disclosures):
    page = till.get(reverse("till:capture")).content.decode()
    assert "Enrol in Tandem Rewards" in page
    assert programme.benefit_line in page
    data = {"email": "grace@example.com", "first_name": "Grace", "loyalty_enrol": "on"}
    till.post(reverse("till:capture"), data)
    done = till.get(reverse("till:capture-done")).content.decode()
    assert "Enrolled in Tandem Rewards." in done
    assert 'data-testid="card-number-large"' in done
    till.post(reverse("till:capture"), data)
    assert "Already a Tandem Rewards member" in till.get(reverse("till:capture-done")).content.decode()
    from loyalty.models import LoyaltyAccount

    assert LoyaltyAccount.objects.filter(customer__email="grace@example.com").count() == 1


def test_spend_points_on_a_reward(till, account, programme):
    from loyalty.models import Offer

    points_adjust(account=account, points=500, reason="Seed", user=None, idempotency_key="s")
    reward = OfferFactory(
        programme=programme, kind=Offer.Kind.FREE_ITEM, amount_off=None, free_item="latte", points_cost=300
    )
    page = till.get(_url("account", account)).content.decode()
    assert f'name="reward" value="{reward.pk}"' in page
    response = till.post(_url("points", account), {"reward": reward.pk, "order_reference": "R-3", "nonce": "r1"})
    assert response.status_code == 302
    assert "300 points spent: Reward: " in till.get(response.url).content.decode()
    account.refresh_from_db()
    assert account.points_balance == 200
    response = till.post(_url("points", account), {"reward": reward.pk, "order_reference": "R-4", "nonce": "r2"})
    assert response.status_code == 400
    assert "Only 200 points" in response.content.decode()
