"""Coupon and points redemptions, cancelling them, code generation, and bad input changing nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.exceptions import (
    CouponError,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidAmount,
    LoyaltyError,
    OfferLimitReached,
)
from loyalty.models import CouponCode, LedgerEntry, Offer, Redemption
from loyalty.selectors import ledger_balance
from loyalty.services import (
    account_enrol,
    coupon_code_create,
    coupon_codes_generate,
    coupon_preview,
    coupon_redeem,
    points_adjust,
    points_redeem,
    redemption_cancel,
)
from tests.factories import CustomerFactory
from tests.factories.loyalty import CouponCodeFactory, OfferFactory


def _snapshot():
    return (
        Redemption.objects.count(),
        LedgerEntry.objects.count(),
        list(CouponCode.objects.order_by("pk").values_list("uses", flat=True)),
        list(Offer.objects.order_by("pk").values_list("redemptions_count", flat=True)),
    )


def _redeem(code, customer, store, key="k1", **kwargs):
    return coupon_redeem(
        code=code,
        customer=customer,
        channel="store",
        store=store,
        order_reference=kwargs.pop("order_reference", "R-1"),
        idempotency_key=key,
        **kwargs,
    )


@pytest.fixture
def funded(account):
    points_adjust(account=account, points=1000, reason="Welcome gift", user=None, idempotency_key="seed")
    return account


def test_redeem_a_shared_code_at_the_till(account, programme, store, clerk):
    code = coupon_code_create(offer=OfferFactory(programme=programme, amount_off=Decimal("5")), code="spring-5")
    preview = coupon_preview(code=" spring 5 ", customer=account.customer, order_amount="30.00")
    assert (preview.gives, preview.discount_amount) == ("5.00 USD off", Decimal("5.00"))
    redemption, created = _redeem("SPRING5", account.customer, store, clerk=clerk, order_amount="30.00")
    again, created_again = _redeem("SPRING5", account.customer, store, clerk=clerk, order_amount="30.00")
    assert created
    assert not created_again
    assert again.pk == redemption.pk
    assert (redemption.store, redemption.clerk, redemption.order_reference) == (store, clerk, "R-1")
    assert redemption.discount_amount == Decimal("5.00")
    code.refresh_from_db()
    assert code.uses == 1


def test_percent_off_and_bonus_points_offers(account, programme, store):
    percent = CouponCodeFactory(
        offer=OfferFactory(programme=programme, kind=Offer.Kind.PERCENT_OFF, percent_off=15, amount_off=None)
    )
    bonus = CouponCodeFactory(
        offer=OfferFactory(programme=programme, kind=Offer.Kind.BONUS_POINTS, bonus_points=250, amount_off=None)
    )
    redemption, _ = _redeem(percent.code, account.customer, store, order_amount="80.00")
    assert redemption.discount_amount == Decimal("12.00")
    _redeem(bonus.code, account.customer, store, key="k2")
    account.refresh_from_db()
    assert account.points_balance == 250 == ledger_balance(account)


def test_points_for_money_off_and_for_a_reward(funded, programme, store, clerk):
    redemption, _ = points_redeem(
        account=funded,
        points=500,
        channel="store",
        store=store,
        clerk=clerk,
        order_reference="R-9",
        idempotency_key="p1",
    )
    assert redemption.discount_amount == Decimal("5.00")
    reward = OfferFactory(
        programme=programme, kind=Offer.Kind.FREE_ITEM, free_item="coffee", amount_off=None, points_cost=300
    )
    points_redeem(account=funded, reward=reward, channel="online", order_reference="W-1", idempotency_key="p2")
    funded.refresh_from_db()
    assert funded.points_balance == 200 == ledger_balance(funded)


def test_online_points_redemption_is_idempotent_per_key(funded):
    first, created = points_redeem(
        account=funded, points=100, channel="online", order_reference="W-7", idempotency_key="shop:W-7"
    )
    again, created_again = points_redeem(
        account=funded, points=100, channel="online", order_reference="W-7", idempotency_key="shop:W-7"
    )
    assert created
    assert not created_again
    assert first.pk == again.pk
    with pytest.raises(IdempotencyConflict):
        points_redeem(account=funded, points=200, channel="online", order_reference="W-7", idempotency_key="shop:W-7")
    funded.refresh_from_db()
    assert funded.points_balance == 900


def test_cancelling_a_redemption_restores_what_it_took(funded, store, clerk, programme):
    redemption, _ = points_redeem(
        account=funded, points=400, channel="store", store=store, order_reference="R-2", idempotency_key="x"
    )
    code = CouponCodeFactory(offer=OfferFactory(programme=programme, total_limit=1))
    coupon_redemption, _ = _redeem(code.code, funded.customer, store, key="y")
    for _ in range(2):
        redemption_cancel(redemption=redemption, user=clerk, reason="Customer changed mind")
        redemption_cancel(redemption=coupon_redemption, user=clerk)
    funded.refresh_from_db()
    code.refresh_from_db()
    code.offer.refresh_from_db()
    assert funded.points_balance == 1000 == ledger_balance(funded)
    assert (code.uses, code.offer.redemptions_count) == (0, 0)
    # the code is usable again
    assert _redeem(code.code, funded.customer, store, key="z")[1]


def test_generate_unique_codes_per_recipient(programme):
    offer = OfferFactory(programme=programme, code_mode=Offer.CodeMode.UNIQUE)
    accounts = [account_enrol(customer=CustomerFactory(), programme=programme)[0] for _ in range(5)]
    codes = coupon_codes_generate(offer=offer, count=0, accounts=accounts, issue_reference="spring-batch")
    assert len({c.code for c in codes}) == 5
    assert {c.account_id for c in codes} == {a.pk for a in accounts}
    assert all(c.issued_at and c.issue_reference == "spring-batch" and c.max_uses == 1 for c in codes)
    assert len(coupon_codes_generate(offer=offer, count=300, max_uses=None)) == 300
    with pytest.raises(InvalidAmount):
        coupon_codes_generate(offer=offer, count=0)


# --- Bad input: a clear message and nothing changes ---------------------------------------------


@pytest.fixture
def other_customers_code(programme):
    other, _ = account_enrol(customer=CustomerFactory(), programme=programme)
    return CouponCodeFactory(offer=OfferFactory(programme=programme), account=other)


@pytest.mark.parametrize(
    ("make_code", "message"),
    [
        (lambda p: "NOSUCHCODE", "Unknown code"),
        (
            lambda p: (
                CouponCodeFactory(
                    offer=OfferFactory(
                        programme=p,
                        valid_from=timezone.now() - timedelta(days=9),
                        valid_until=timezone.now() - timedelta(days=1),
                    )
                ).code
            ),
            "expired",
        ),
        (lambda p: CouponCodeFactory(offer=OfferFactory(programme=p), uses=1).code, "already been used"),
        (
            lambda p: (
                CouponCodeFactory(offer=OfferFactory(programme=p, valid_from=timezone.now() + timedelta(days=1))).code
            ),
            "valid from",
        ),
        (lambda p: CouponCodeFactory(offer=OfferFactory(programme=p), is_void=True).code, "cancelled"),
        (lambda p: CouponCodeFactory(offer=OfferFactory(programme=p, is_active=False)).code, "withdrawn"),
        (
            lambda p: CouponCodeFactory(offer=OfferFactory(programme=p, total_limit=3, redemptions_count=3)).code,
            "fully redeemed",
        ),
    ],
)
def test_unusable_codes_are_refused(account, programme, store, make_code, message):
    code = make_code(programme)
    before = _snapshot()
    with pytest.raises(CouponError, match=message):
        coupon_preview(code=code, customer=account.customer)
    with pytest.raises(CouponError, match=message):
        _redeem(code, account.customer, store)
    assert _snapshot() == before


def test_another_customers_unique_code_is_refused(account, store, other_customers_code):
    before = _snapshot()
    with pytest.raises(CouponError, match="another customer"):
        _redeem(other_customers_code.code, account.customer, store)
    assert _snapshot() == before
    # the owner can use it
    owner = other_customers_code.account.customer
    assert _redeem(other_customers_code.code, owner, store)[1]


def test_per_customer_limit(account, programme, store):
    offer = OfferFactory(programme=programme, per_customer_limit=1)
    code = coupon_code_create(offer=offer, code="ONCEEACH")
    _redeem(code.code, account.customer, store, key="a")
    before = _snapshot()
    with pytest.raises(OfferLimitReached):
        _redeem(code.code, account.customer, store, key="b")
    assert _snapshot() == before
    assert _redeem(code.code, CustomerFactory(), store, key="c")[1]


@pytest.mark.parametrize("points", [0, -5, "abc", "1.5", 10**12, None, True])
def test_bad_point_amounts_change_nothing(funded, store, points):
    before = (_snapshot(), funded.points_balance)
    with pytest.raises(InvalidAmount):
        points_redeem(
            account=funded, points=points, channel="store", store=store, order_reference="R", idempotency_key="bad"
        )
    funded.refresh_from_db()
    assert (_snapshot(), funded.points_balance) == before


@pytest.mark.parametrize("amount", ["-1", "0", "abc", "1e9", "NaN", "12.345"])
def test_bad_order_amounts_change_nothing(account, programme, store, amount):
    code = CouponCodeFactory(offer=OfferFactory(programme=programme))
    before = _snapshot()
    with pytest.raises(InvalidAmount):
        _redeem(code.code, account.customer, store, order_amount=amount)
    assert _snapshot() == before


def test_overdraft_and_missing_references_change_nothing(funded, store):
    before = _snapshot()
    with pytest.raises(InsufficientPoints, match="Only 1000 points"):
        points_redeem(
            account=funded, points=1001, channel="store", store=store, order_reference="R", idempotency_key="o"
        )
    with pytest.raises(LoyaltyError, match="order or receipt"):
        points_redeem(account=funded, points=10, channel="store", store=store, order_reference=" ", idempotency_key="o")
    with pytest.raises(LoyaltyError, match="needs its store"):
        points_redeem(account=funded, points=10, channel="store", order_reference="R", idempotency_key="o")
    assert _snapshot() == before


def test_adjustments_need_a_reason_and_respect_the_balance(account):
    with pytest.raises(LoyaltyError, match="reason"):
        points_adjust(account=account, points=10, reason=" ", user=None, idempotency_key="a")
    with pytest.raises(InsufficientPoints):
        points_adjust(account=account, points=-10, reason="Correction", user=None, idempotency_key="b")
    with pytest.raises(InvalidAmount):
        points_adjust(account=account, points=0, reason="Correction", user=None, idempotency_key="c")
    assert not LedgerEntry.objects.exists()


def test_a_merged_profiles_account_is_found_through_the_survivor(account, programme, store):
    from loyalty.selectors import account_find

    survivor = CustomerFactory(email="survivor@example.com")
    account.customer.merged_into = survivor
    account.customer.save()
    assert account_find(query="survivor@example.com", programme=programme) == account
    code = CouponCodeFactory(offer=OfferFactory(programme=programme), account=account)
    redemption, _ = _redeem(code.code, survivor, store)
    assert redemption.account == account


@pytest.mark.parametrize("raw", ["1e3", "1E+3", "NaN", "Infinity", "-inf", "1,000", "12.345", Decimal("NaN")])
def test_money_in_any_notation_but_plain_digits_is_refused(raw):
    from loyalty.services.redemptions import clean_money

    with pytest.raises(InvalidAmount):
        clean_money(raw)
    assert clean_money("1000") == Decimal("1000")


def test_a_till_purchase_of_1e3_is_refused_and_writes_nothing(account, store, clerk):
    from customers.models import Purchase
    from loyalty.services import till_purchase_record

    with pytest.raises(InvalidAmount, match="no exponent"):
        till_purchase_record(account=account, store=store, clerk=clerk, receipt="R-1", amount="1e3")
    assert not Purchase.objects.exists()
    assert not LedgerEntry.objects.exists()
