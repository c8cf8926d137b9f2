"""The same till request (form nonce, receipt number) sent twice at once: both get the first answer.

Raced by real processes on PostgreSQL through the till pages, several times each.
"""

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Purchase
from loyalty.models import LedgerEntry, Redemption
from loyalty.selectors import ledger_balance
from loyalty.services import account_enrol, coupon_code_create, points_adjust
from tests.concurrency import errors, race
from tests.factories import ClerkFactory, CustomerFactory, StoreFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import OfferFactory, ProgrammeFactory

REPETITIONS = 10

pytestmark = pytest.mark.postgres


@pytest.fixture
def setup(transactional_db):
    store = StoreFactory(code="repeat-1")
    clerk = ClerkFactory(store=store)
    # One clerk on two devices (two sessions) pressing the same button: the same request key.
    tills = []
    for _ in range(2):
        client = Client(raise_request_exception=False)
        assert client.login(username=clerk.username, password=PASSWORD)
        tills.append(client)
    return ProgrammeFactory(), store, tills


def _member(programme, points=0):
    account, _ = account_enrol(customer=CustomerFactory(), programme=programme)
    if points:
        points_adjust(account=account, points=points, reason="Seed", user=None, idempotency_key="seed")
    return account


def _post(till, name, account, data):
    response = till.post(reverse(f"loyalty:{name}", args=[account.card_number]), data, follow=True)
    status = response.redirect_chain[0][1] if response.redirect_chain else response.status_code
    return status, [str(m) for m in response.context["messages"]] if response.context else []


def _race_both(tills, name, account, data):
    outcomes = race(*(lambda till=till: _post(till, name, account, data) for till in tills))
    assert all(o.ok for o in outcomes), errors(outcomes)
    return [o.value for o in outcomes]


def test_the_same_points_spend_posted_twice_at_once_answers_like_the_first(setup):
    programme, _store, tills = setup
    for i in range(REPETITIONS):
        account = _member(programme, points=100)
        data = {"points": "60", "order_reference": f"R-{i}", "nonce": f"spend-{i}"}

        answers = _race_both(tills, "points", account, data)

        assert [status for status, _ in answers] == [302, 302], answers
        shown = sorted(line for _, lines in answers for line in lines)
        assert all(line.startswith("60 points spent") for line in shown), shown
        assert sum("(already recorded)" in line for line in shown) == 1, shown
        account.refresh_from_db()
        assert account.points_balance == 40 == ledger_balance(account)
        assert Redemption.objects.filter(account=account).count() == 1


def test_the_same_coupon_confirmation_posted_twice_at_once_answers_like_the_first(setup):
    programme, _store, tills = setup
    offer = OfferFactory(programme=programme)
    for i in range(REPETITIONS):
        account = _member(programme)
        code = coupon_code_create(offer=offer, code=f"ONCE{i}", max_uses=1)
        data = {"code": code.code, "order_reference": f"R-{i}", "nonce": f"coupon-{i}"}

        answers = _race_both(tills, "coupon-confirm", account, data)

        assert [status for status, _ in answers] == [302, 302], answers
        shown = [line for _, lines in answers for line in lines]
        assert all(line.startswith(f"Code {code.code} redeemed") for line in shown), shown
        assert sum("(already recorded)" in line for line in shown) == 1, shown
        code.refresh_from_db()
        assert code.uses == 1
        assert Redemption.objects.filter(coupon_code=code).count() == 1


def test_the_same_receipt_posted_twice_at_once_answers_like_the_first(setup):
    programme, store, tills = setup
    for i in range(REPETITIONS):
        account = _member(programme)
        data = {"receipt": f"R-{i}", "amount": "25.00"}

        answers = _race_both(tills, "purchase", account, data)

        assert [status for status, _ in answers] == [302, 302], answers
        shown = [line for _, lines in answers for line in lines]
        assert all(line.startswith(f"Receipt R-{i}: 25 points earned") for line in shown), shown
        assert sum("(already recorded)" in line for line in shown) == 1, shown
        account.refresh_from_db()
        assert account.points_balance == 25 == ledger_balance(account)
        assert Purchase.objects.filter(external_ref=f"{store.code}:R-{i}").count() == 1
        assert LedgerEntry.objects.filter(account=account, kind="earn").count() == 1
