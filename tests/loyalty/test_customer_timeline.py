"""The customer 360° timeline in the admin shows loyalty history next to consent and purchases."""

import pytest
from django.urls import reverse

from loyalty.services.accounts import points_adjust
from tests.factories import MarketingUserFactory


@pytest.mark.django_db
def test_customer_change_page_shows_ledger_entries(client, customer, account):
    marketer = MarketingUserFactory()
    points_adjust(account=account, points=120, reason="Goodwill <b>gesture</b>", user=marketer, idempotency_key="t-1")
    client.force_login(marketer)

    response = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "+120 points" in page
    assert account.card_number in page
    assert "Goodwill &lt;b&gt;gesture&lt;/b&gt;" in page
