"""One lock order for a person: the pairs that used to deadlock, raced by real processes on PostgreSQL.

Each pair runs REPETITIONS times on fresh profiles; every run must end without a surfaced deadlock,
without a 500 at the till, with the purchase's points where they belong and every balance equal to
its ledger.
"""

import pytest
from django.test import Client
from django.urls import reverse

from customers.exceptions import MergeError
from customers.models import Purchase
from customers.services import customer_merge
from loyalty.models import LedgerEntry, LoyaltyAccount, Redemption
from loyalty.selectors import ledger_balance
from loyalty.services import account_enrol, coupon_redeem, points_adjust, points_redeem, till_purchase_record
from tests.concurrency import errors, race
from tests.factories import ClerkFactory, CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import CouponCodeFactory, OfferFactory, ProgrammeFactory

REPETITIONS = 20

pytestmark = pytest.mark.postgres


@pytest.fixture
def shop(transactional_db):
    store = StoreFactory(code="lock-1")
    return {
        "programme": ProgrammeFactory(),
        "store": store,
        "clerks": [ClerkFactory(store=store), ClerkFactory(store=store)],
        "staff": MarketingUserFactory(),
    }


def _till(clerk) -> Client:
    """A logged-in till whose 500s come back as responses, so a test can count them."""
    client = Client(raise_request_exception=False)
    assert client.login(username=clerk.username, password=PASSWORD)
    return client


def _member(programme, points=0, **fields):
    account, _ = account_enrol(customer=CustomerFactory(**fields), programme=programme)
    if points:
        points_adjust(account=account, points=points, reason="Seed", user=None, idempotency_key="seed")
    return account


def _purchase_at_till(till: Client, card_number: str, receipt: str, amount: str = "10.00"):
    """The clerk's purchase form, as the till posts it; returns (status, message shown after the redirect)."""
    response = till.post(
        reverse("loyalty:purchase", args=[card_number]), {"receipt": receipt, "amount": amount}, follow=True
    )
    first_status = response.redirect_chain[0][1] if response.redirect_chain else response.status_code
    shown = [str(m) for m in response.context["messages"]] if response.context else []
    return first_status, shown


def _assert_ledgers_add_up():
    for account in LoyaltyAccount.objects.all():
        assert account.points_balance == ledger_balance(account), account
        assert account.points_balance >= 0


def test_a_merge_racing_a_till_purchase_on_the_merged_away_card_loses_no_points(shop):
    programme, store = shop["programme"], shop["store"]
    till = _till(shop["clerks"][0])
    for i in range(REPETITIONS):
        mine = _member(programme, points=100)
        theirs = _member(programme, points=30)
        survivor, other = mine.customer, theirs.customer
        receipt = f"M-{i}"
        if i % 2 == 0:
            # Through the till page (the view resolves the card, then calls the service).
            def purchase(card=theirs.card_number, receipt=receipt):
                return _purchase_at_till(till, card, receipt)
        else:

            def purchase(account=theirs, receipt=receipt):
                _purchase, result = till_purchase_record(
                    account=account, store=store, clerk=shop["clerks"][1], receipt=receipt, amount="10.00"
                )
                return 302, [f"{result.total} points earned"]

        def merge(survivor=survivor, other=other):
            customer_merge(survivor=survivor, other=other, user=shop["staff"])
            return "merged"

        outcomes = race(merge, purchase)
        assert all(o.ok for o in outcomes), errors(outcomes)
        status, shown = outcomes[1].value
        assert status == 302, (i, status, shown)
        assert any("10 points earned" in line for line in shown), (i, shown)
        # Whichever went first, the purchase ends on the survivor and its 10 points with the survivor's card.
        mine.refresh_from_db()
        theirs.refresh_from_db()
        assert Purchase.objects.get(external_ref=f"{store.code}:{receipt}").customer_id == survivor.pk
        assert (theirs.status, theirs.points_balance) == (LoyaltyAccount.Status.CLOSED, 0)
        assert mine.points_balance == 100 + 30 + 10, i
    _assert_ledgers_add_up()


def test_two_opposite_merges_of_the_same_pair_end_with_one_merge(shop):
    programme = shop["programme"]
    for i in range(REPETITIONS):
        left = _member(programme, points=40)
        right = _member(programme, points=2)

        def keep_left(left=left.customer, right=right.customer):
            return customer_merge(survivor=left, other=right, user=shop["staff"]).pk

        def keep_right(left=left.customer, right=right.customer):
            return customer_merge(survivor=right, other=left, user=shop["staff"]).pk

        outcomes = race(keep_left, keep_right)
        merged = [o for o in outcomes if o.ok]
        refused = [o for o in outcomes if not o.ok]
        assert len(merged) == 1, errors(outcomes)
        assert len(refused) == 1
        assert refused[0].error.startswith(f"{MergeError.__name__}: Only active profiles"), refused[0].detail
        survivor_account = LoyaltyAccount.objects.get(customer_id=merged[0].value, status=LoyaltyAccount.Status.ACTIVE)
        assert survivor_account.points_balance == 42, i
    _assert_ledgers_add_up()


def test_a_coupon_redemption_racing_a_purchase_of_the_same_member(shop):
    programme, store = shop["programme"], shop["store"]
    tills = [_till(clerk) for clerk in shop["clerks"]]
    for i in range(REPETITIONS):
        account = _member(programme, points=50)
        code = CouponCodeFactory(offer=OfferFactory(programme=programme), max_uses=1)

        def redeem(customer=account.customer, code=code.code, i=i):
            _redemption, created = coupon_redeem(
                code=code,
                customer=customer,
                channel="store",
                store=store,
                clerk=shop["clerks"][1],
                order_reference=f"C-{i}",
                idempotency_key=f"coupon-{i}",
            )
            return created

        if i % 2 == 0:

            def purchase(card=account.card_number, i=i):
                return _purchase_at_till(tills[0], card, f"P-{i}")
        else:

            def purchase(account=account, i=i):
                till_purchase_record(account=account, store=store, clerk=shop["clerks"][0], receipt=f"P-{i}", amount=10)
                return 302, ["10 points earned"]

        outcomes = race(redeem, purchase)
        assert all(o.ok for o in outcomes), errors(outcomes)
        assert outcomes[0].value is True
        assert outcomes[1].value[0] == 302, outcomes[1].value
        account.refresh_from_db()
        assert account.points_balance == 60, i
        code.refresh_from_db()
        assert code.uses == 1
    _assert_ledgers_add_up()


def test_a_coupon_redemption_racing_a_points_spend_of_the_same_member(shop):
    programme, store = shop["programme"], shop["store"]
    for i in range(REPETITIONS):
        account = _member(programme, points=100)
        offer = OfferFactory(programme=programme, kind="bonus_points", amount_off=None, bonus_points=25)
        code = CouponCodeFactory(offer=offer, max_uses=1)

        def redeem(customer=account.customer, code=code.code, i=i):
            return coupon_redeem(
                code=code,
                customer=customer,
                channel="store",
                store=store,
                order_reference=f"C-{i}",
                idempotency_key=f"coupon-{i}",
            )[1]

        def spend(account=account, i=i):
            return points_redeem(
                account=account,
                points=60,
                channel="store",
                store=store,
                order_reference=f"S-{i}",
                idempotency_key=f"spend-{i}",
            )[1]

        outcomes = race(redeem, spend)
        assert all(o.ok for o in outcomes), errors(outcomes)
        assert [o.value for o in outcomes] == [True, True]
        account.refresh_from_db()
        assert account.points_balance == 100 + 25 - 60, i
        assert Redemption.objects.filter(account=account).count() == 2
    _assert_ledgers_add_up()


def test_a_purchase_of_a_profile_merged_away_is_recorded_on_and_earns_for_the_survivor(shop):
    programme, store = shop["programme"], shop["store"]
    mine = _member(programme, points=5)
    theirs = _member(programme)
    customer_merge(survivor=mine.customer, other=theirs.customer, user=shop["staff"])

    # The till still holds the merged-away card's account, read before the merge.
    purchase, result = till_purchase_record(
        account=theirs, store=store, clerk=shop["clerks"][0], receipt="AFTER-1", amount="12.00"
    )

    assert purchase.customer_id == mine.customer_id
    assert result.account.pk == mine.pk
    assert result.total == 12
    mine.refresh_from_db()
    assert mine.points_balance == 17
    assert not LedgerEntry.objects.filter(account=theirs, purchase=purchase).exists()
    # The same receipt again, from the old card: the first answer, nothing earned twice.
    again, repeat = till_purchase_record(
        account=theirs, store=store, clerk=shop["clerks"][0], receipt="AFTER-1", amount="12.00"
    )
    assert (again.pk, repeat.created, repeat.total) == (purchase.pk, False, 12)
    mine.refresh_from_db()
    assert mine.points_balance == 17
    _assert_ledgers_add_up()
