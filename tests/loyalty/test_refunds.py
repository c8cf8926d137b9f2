"""Refunds take back a purchase's points once: at the till (own store only, after a confirmation)
and from the admin (ledger entries action)."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from loyalty.exceptions import LoyaltyError
from loyalty.models import LedgerEntry
from loyalty.selectors import ledger_balance
from loyalty.services import points_redeem, till_purchase_record, till_purchase_refund
from tests.factories import ClerkFactory, StoreFactory
from tests.factories.customers import PASSWORD


@pytest.fixture
def sale(account, store, clerk):
    purchase, result = till_purchase_record(account=account, store=store, clerk=clerk, receipt="R-7", amount="40.00")
    assert result.total == 40
    return purchase


@pytest.fixture
def till(client, clerk):
    client.login(username=clerk.username, password=PASSWORD)
    return client


def _reversals():
    return list(LedgerEntry.objects.filter(kind="reverse").values_list("points", flat=True))


def _messages(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_till_refund_shows_what_it_earned_then_takes_it_back_once(
    till, account, sale, clerk, django_assert_max_num_queries
):
    page = till.get(reverse("loyalty:refund"))
    assert page.status_code == 200
    assert b'id="refund-form"' in page.content
    with django_assert_max_num_queries(14):
        preview = till.post(reverse("loyalty:refund"), {"receipt": " R-7 "})
    body = preview.content.decode()
    assert preview.status_code == 200
    assert 'data-testid="refund-earned">40 points' in body
    assert "Take back 40 points" in body
    assert '<button type="submit">Confirm refund' in body
    assert account.card_number in body
    assert _reversals() == []  # the check step changes nothing

    with django_assert_max_num_queries(24):
        done = till.post(reverse("loyalty:refund-confirm"), {"receipt": "R-7"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("loyalty:account", args=[account.card_number])
    assert f"Receipt R-7 refunded: 40 points taken back from card {account.card_number}." in _messages(done)
    account.refresh_from_db()
    assert account.points_balance == 0 == ledger_balance(account)
    entry = LedgerEntry.objects.get(kind="reverse")
    assert (entry.points, entry.store, entry.acting_user, entry.purchase) == (-40, sale.store, clerk, sale)

    again = till.post(reverse("loyalty:refund-confirm"), {"receipt": "R-7"}, follow=True)
    assert any("already refunded" in m and "nothing more was taken" in m for m in _messages(again))
    assert _reversals() == [-40]
    preview_after = till.post(reverse("loyalty:refund"), {"receipt": "R-7"}).content.decode()
    assert "Already refunded" in preview_after
    assert '<button type="submit">Confirm refund' not in preview_after


def test_a_clerk_of_another_store_cannot_refund(client, account, sale, store):
    other_store = StoreFactory(code="bos-1", name="Boston")
    outsider = ClerkFactory(store=other_store)
    client.login(username=outsider.username, password=PASSWORD)
    check = client.post(reverse("loyalty:refund"), {"receipt": "R-7"})
    assert check.status_code == 404
    assert "No purchase with receipt R-7 at Boston" in check.content.decode()
    confirm = client.post(reverse("loyalty:refund-confirm"), {"receipt": "R-7"})
    assert confirm.status_code == 400
    # Naming the purchase's store directly is refused too.
    with pytest.raises(LoyaltyError, match="Only a clerk of the store"):
        till_purchase_refund(store=store, clerk=outsider, receipt="R-7", programme=account.programme)
    assert _reversals() == []
    account.refresh_from_db()
    assert account.points_balance == 40


def test_till_refund_reports_points_already_spent(till, account, sale, store):
    points_redeem(account=account, points=30, channel="store", store=store, order_reference="R-8", idempotency_key="s")
    preview = till.post(reverse("loyalty:refund"), {"receipt": "R-7"}).content.decode()
    assert "Take back 10 points</strong> of the 40 earned: 30 were already spent" in preview
    done = till.post(reverse("loyalty:refund-confirm"), {"receipt": "R-7"}, follow=True)
    assert any("10 points taken back" in m and "30 points were already spent" in m for m in _messages(done))
    account.refresh_from_db()
    assert account.points_balance == 0 == ledger_balance(account)


@pytest.mark.parametrize(
    ("receipt", "message", "statuses"),
    [("", "Receipt number", (400, 400)), ("NOPE", "No purchase with receipt NOPE", (404, 400))],
)
def test_till_refund_bad_receipts_change_nothing(till, sale, receipt, message, statuses):
    for name, status in zip(("loyalty:refund", "loyalty:refund-confirm"), statuses, strict=True):
        response = till.post(reverse(name), {"receipt": receipt})
        assert response.status_code == status
        assert message in response.content.decode()
    assert _reversals() == []


def test_refund_page_needs_a_till_login(client, sale):
    response = client.post(reverse("loyalty:refund-confirm"), {"receipt": "R-7"})
    assert response.status_code == 302
    assert _reversals() == []


def test_admin_refund_action_confirms_then_takes_back_once(client, account, sale):
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(boss)
    earn = LedgerEntry.objects.get(kind="earn")
    url = reverse("admin:loyalty_ledgerentry_changelist")
    page = client.post(url, {"action": "refund_purchases", "_selected_action": [earn.pk]})
    body = page.content.decode()
    assert page.status_code == 200
    assert "Confirm refund" in body
    assert sale.external_ref in body
    assert _reversals() == []
    data = {"action": "refund_purchases", "_selected_action": [earn.pk], "apply": "1", "reason": "Returned by post"}
    first = client.post(url, data, follow=True)
    assert any("40 points taken back" in str(m) for m in first.context["messages"])
    second = client.post(url, data, follow=True)
    assert any("already refunded" in str(m) for m in second.context["messages"])
    entry = LedgerEntry.objects.get(kind="reverse")
    assert (entry.points, entry.acting_user, entry.reason) == (
        -40,
        boss,
        f"Returned by post: purchase {sale.external_ref}",
    )
    account.refresh_from_db()
    assert account.points_balance == 0 == ledger_balance(account)


def test_admin_refund_action_needs_earn_entries(client, account):
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(boss)
    from loyalty.services import points_adjust

    entry, _ = points_adjust(account=account, points=5, reason="Seed", user=None, idempotency_key="a")
    url = reverse("admin:loyalty_ledgerentry_changelist")
    response = client.post(url, {"action": "refund_purchases", "_selected_action": [entry.pk]}, follow=True)
    assert any("Choose earn entries" in str(m) for m in response.context["messages"])
    assert _reversals() == []


def test_till_refund_of_an_erased_members_purchase_says_the_card_is_closed(till, account, sale, clerk):
    from customers.services import customer_erase

    customer_erase(customer=account.customer, user=clerk)
    preview = till.post(reverse("loyalty:refund"), {"receipt": "R-7"}).content.decode()
    assert "card is closed" in preview
    assert '<button type="submit">Confirm refund' not in preview
    response = till.post(reverse("loyalty:refund-confirm"), {"receipt": "R-7"})
    assert response.status_code == 400
    assert "Nothing left to take back" in response.content.decode()
    assert _reversals() == []
