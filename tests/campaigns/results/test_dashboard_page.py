"""The goal dashboard page: listed in the admin index, bounded queries whatever the data, CSV exports."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from campaigns.results.rollups import results_rollups_refresh
from tests.campaigns.results.world import buy, deliver, march, sent_campaign
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db
URL = "/admin/campaigns/goaldashboard/?from=2026-03-01&to=2026-03-10"
# The page's statements: session and user, the campaigns in the window, then one or two per table.
MAX_QUERIES = 36


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    return user


def _history(size: int) -> None:
    store = StoreFactory()
    campaigns = [sent_campaign(f"Campaign {n}") for n in range(2)]
    for n in range(size):
        person = CustomerFactory(source="store" if n % 2 else "web", source_store=store if n % 2 else None)
        buy(person, march(3 + n % 5), "12.50", channel="store" if n % 3 else "online", store=store)
        deliver(campaigns[n % 2], person, opened_at=march(2, 10) if n % 4 == 0 else None)
    results_rollups_refresh()


@pytest.mark.parametrize("size", [1, 30])
def test_dashboard_query_count_does_not_grow_with_the_data(client, marketer, size, django_assert_max_num_queries):
    _history(size)

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(URL)

    assert response.status_code == 200
    assert b'id="goal-awareness"' in response.content
    assert b'id="goal-health"' in response.content
    assert b"0.1 % complaint limit" in response.content
    assert b"last touch" in response.content


def test_dashboard_is_linked_from_the_admin_index(client, marketer):
    response = client.get(reverse("admin:index"))

    assert b"/admin/campaigns/goaldashboard/" in response.content
    assert b"Goal dashboard" in response.content


def test_every_table_exports_formula_safe_csv(client, marketer):
    campaign = sent_campaign("=2+5")
    person = CustomerFactory()
    deliver(campaign, person)
    buy(person, march(3), "10.00")
    Campaign.objects.filter(pk=campaign.pk).update(name="@SUM(A1)")
    results_rollups_refresh()

    response = client.get(URL + "&export=message_conversion")
    missing = client.get(URL + "&export=nothing")

    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines()[1].startswith("'@SUM(A1),Email,Default,1,1,1,100.0,10.00")
    assert missing.status_code == 404


def test_a_bad_period_is_explained_and_the_default_shown(client, marketer):
    response = client.get("/admin/campaigns/goaldashboard/?from=2026-03-10&to=nonsense")

    assert response.status_code == 200
    assert b"YYYY-MM-DD" in response.content


def test_staff_without_permission_cannot_see_it(client):
    from tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    client.login(username=user.username, password=PASSWORD)

    response = client.get(URL)

    assert response.status_code in (403, 404)


def test_the_dashboard_says_when_its_figures_were_gathered(client, marketer):
    before = client.get(URL).content.decode()
    assert "The figures have not been gathered yet" in before

    results_rollups_refresh()

    after = client.get(URL).content.decode()
    assert "Figures as of " in after
    assert "The figures have not been gathered yet" not in after
