"""The daily roll-ups answer exactly what the base tables do, stay so as history changes, and refresh safely."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Campaign, Delivery, DeliveryEvent, Enrolment, ProfileDay, PurchaseDay, RollupState, SendDay
from campaigns.results import selectors
from campaigns.results.periods import Period
from campaigns.results.rollups import results_rollups_refresh
from customers.models import ConsentEvidence, Customer, SurveyResponse
from customers.services.profiles import customer_erase, customer_merge
from loyalty.models import Redemption
from tests.campaigns.results.test_dashboard import _enrol, _journey
from tests.campaigns.results.world import PERIOD, buy, deliver, march, redeem, refund, sent_campaign
from tests.factories import ClerkFactory, CustomerFactory, MarketingUserFactory, StoreFactory, UserFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import CouponCodeFactory, LoyaltyAccountFactory, OfferFactory

pytestmark = pytest.mark.django_db
OLD = date(2026, 4, 1)  # the fixture's history is before this; rows of the recent days are always redone

PERIODS = [
    PERIOD,
    PERIOD.previous,
    Period(date(2026, 3, 4), date(2026, 3, 4)),  # one day
    Period(date(2025, 3, 11), date(2026, 3, 10)),  # a year, the previous one empty
    Period(date(2019, 1, 1), date(2019, 1, 31)),  # nothing at all
]


def _answers(period: Period, *, direct: bool) -> list[tuple]:
    """Every table of the page as (key, columns, rows); notes aside (the reachable snapshot's states its time)."""
    tables = selectors.goal_dashboard(period, direct=direct)
    return [(table.key, table.columns, table.rows) for group in tables.values() for table in group]


def _assert_rollups_answer_as_the_base_tables():
    for period in PERIODS:
        assert _answers(period, direct=False) == _answers(period, direct=True), period


@pytest.fixture
def world():
    """Profiles from every source over both periods and before, duplicates merged, a profile erased, buyers
    online and in store with a refund, people who never bought, and two campaigns with codes redeemed."""
    stores = [StoreFactory(name="Lincoln Road"), StoreFactory(name="Fifth Avenue")]
    clerks = [ClerkFactory(username="sam"), ClerkFactory(username="ann")]
    offer = OfferFactory()
    spring = sent_campaign("Spring", started=march(2, 9), offer=offer)
    winter = sent_campaign("Winter", started=march(1, 9) - timedelta(days=6), offer=offer)
    people = []
    for n in range(24):
        source = ["store", "web", "import", "api"][n % 4]
        person = CustomerFactory(
            source=source,
            source_store=stores[n % 2] if source == "store" else None,
            source_clerk=clerks[n % 2] if source == "store" and n % 3 else None,
        )
        created = march(1 + n % 10, 8 + n % 12) - timedelta(days=10 * (n % 3))
        Customer.objects.filter(pk=person.pk).update(created_at=created)
        if source == "store" and n % 5:
            ConsentEvidence.objects.create(
                customer=person, channel="email", action="grant", method="checkout", occurred_at=created
            )
        people.append(person)
    for n, person in enumerate(people[:18]):  # the last six never buy
        channel = "store" if n % 3 == 0 else "online"
        purchase = buy(
            person, march(1 + n % 10, 10 + n % 8) - timedelta(days=10 * (n % 2)), f"{10 + n}.50", channel, stores[0]
        )
        if n % 7 == 0:
            refund(purchase, LoyaltyAccountFactory(customer=person))
        if n % 4 == 0:
            buy(person, march(5 + n % 5, 20), "7.25", "online")
    buy(None, march(6), "99.00", "store", stores[1])  # a walk-in
    buy(people[5], march(6), "6.00", "store", stores[1])  # online first (before), in store in the period
    buy(people[7], march(4, 9), "3.00", "store", stores[1])  # both places on one day
    buy(people[7], march(4, 18), "4.00", "online")
    duplicate = people[1]
    Customer.objects.filter(pk=duplicate.pk).update(merged_into=people[0])
    Customer.objects.filter(pk=people[2].pk).update(erased_at=march(8))
    codes = [CouponCodeFactory(offer=offer) for _ in range(10)]
    deliveries = []
    for n, person in enumerate(people[:20]):
        campaign = spring if n % 2 else winter
        deliveries.append(
            deliver(
                campaign,
                person,
                sent_at=campaign.started_at + timedelta(hours=n % 30),
                coupon_code=codes[n % 10] if n % 3 else None,
                opened_at=campaign.started_at + timedelta(days=1) if n % 4 == 0 else None,
                clicked_at=campaign.started_at + timedelta(days=1) if n % 8 == 0 else None,
            )
        )
        deliver(campaign, person, channel="sms", status="skipped", reason="no_consent")
    redeem(people[4], codes[4], march(3), channel="store", store=stores[0])
    redeem(people[0], codes[1], march(4))  # the survivor redeems what the duplicate was sent
    redeem(people[5], codes[5], march(1) - timedelta(days=8))  # before the send: not the message's
    for n, score in enumerate([10, 9, 8, 6, 0, 10, 3]):
        SurveyResponse.objects.create(
            customer=people[n],
            source=f"campaign:{spring.pk} delivery:{n}",
            score=score,
            answered_at=march(1 + n) - timedelta(days=8 * (n % 2)),
            first_answered_at=march(1) - timedelta(days=20),
        )
    for n, (channel, method) in enumerate([("email", "one_click"), ("sms", "sms_keyword"), ("email", "web_form")]):
        ConsentEvidence.objects.create(
            customer=people[10 + n], channel=channel, action="withdraw", method=method, occurred_at=march(2 + n, 14)
        )
    ConsentEvidence.objects.create(
        customer=people[3], channel="sms", action="grant", method="web_form", occurred_at=march(3)
    )
    for n, kind in enumerate(["bounced", "complained", "bounced", "opened"]):
        DeliveryEvent.objects.create(
            provider="esp",
            provider_event_id=f"w{n}",
            delivery_id=deliveries[n].pk,
            kind=kind,
            occurred_at=march(2 + n % 2, 15),
        )
    welcome, winback = _journey("Welcome"), _journey("Win-back")
    _enrol(welcome, march(2), converted=march(4), sent_at=march(2), customer=people[20])
    _enrol(welcome, march(5), sent_at=march(11, 1), customer=people[21])  # sent after the period
    _enrol(welcome, march(1) - timedelta(days=1), converted=march(2), sent_at=march(1) - timedelta(hours=20))
    _enrol(winback, march(1) - timedelta(days=3), sent_at=march(1) - timedelta(days=3))
    _enrol(winback, march(9), converted=march(12), customer=people[22])  # converts after the period
    return {"people": people, "deliveries": deliveries, "codes": codes, "stores": stores, "winback": winback}


def test_every_table_from_the_rollups_equals_the_direct_computation(world):
    results_rollups_refresh()

    _assert_rollups_answer_as_the_base_tables()
    revenue = {row[0]: row[1:] for row in selectors.revenue(PERIOD).rows}
    assert revenue["Both"][0] > 0  # the fixture is not empty where it matters
    assert SendDay.objects.filter(redemptions__gt=0).exists()


def test_changes_after_the_first_refresh_are_picked_up_incrementally(world):
    people, deliveries = world["people"], world["deliveries"]
    redeem(people[8], world["codes"][3], march(4))  # the code went to people[13], the same person as we learn
    results_rollups_refresh()
    user = UserFactory()

    customer_merge(survivor=people[8], other=people[13], user=user)
    customer_erase(customer=people[16], user=user)
    late = buy(people[9], march(3, 15), "55.00", "store", world["stores"][1])  # imported late
    refund(late, LoyaltyAccountFactory(customer=people[9]))
    old = deliveries[6]
    DeliveryEvent.objects.create(
        provider="esp", provider_event_id="o1", delivery_id=old.pk, kind="opened", occurred_at=march(2)
    )
    Delivery.objects.filter(pk=old.pk).update(opened_at=march(2, 20), clicked_at=march(2, 21))
    Redemption.objects.create(  # redeemed today, after the message it came in
        kind="code",
        customer=people[7],
        coupon_code=world["codes"][7],
        offer=world["codes"][7].offer,
        channel="online",
        order_amount=Decimal("40.00"),
        idempotency_key="late-redemption",
    )
    ConsentEvidence.objects.create(
        customer=people[0], channel="sms", action="grant", method="checkout", occurred_at=march(9)
    )
    Enrolment.objects.filter(journey=world["winback"], converted_at__isnull=True).update(converted_at=timezone.now())
    written = results_rollups_refresh()

    _assert_rollups_answer_as_the_base_tables()
    assert written["sends"] > 0


def test_a_refresh_redoes_only_the_recent_days_and_what_changed(world):
    now = timezone.now()
    results_rollups_refresh(now=now)
    results_rollups_refresh(now=now + timedelta(hours=1))  # the watermark's slack still covers the fixture
    before = (
        set(ProfileDay.objects.filter(day__lt=OLD).values_list("pk", flat=True)),
        set(PurchaseDay.objects.filter(day__lt=OLD).values_list("pk", flat=True)),
    )

    results_rollups_refresh(now=now + timedelta(hours=2))

    # March's rows are neither recent nor touched since: they are kept as they were, not rewritten.
    assert set(ProfileDay.objects.filter(day__lt=OLD).values_list("pk", flat=True)) == before[0]
    assert set(PurchaseDay.objects.filter(day__lt=OLD).values_list("pk", flat=True)) == before[1]
    _assert_rollups_answer_as_the_base_tables()


def test_refreshing_again_changes_nothing_and_full_rebuilds_the_same(world):
    results_rollups_refresh()
    first = sorted(SendDay.objects.values_list("day", "cause_id", "channel", "messages", "opens", "redemptions"))

    results_rollups_refresh()
    results_rollups_refresh(full=True)

    assert (
        sorted(SendDay.objects.values_list("day", "cause_id", "channel", "messages", "opens", "redemptions")) == first
    )
    assert RollupState.objects.get().refreshed_at is not None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_that_finds_another_running_does_nothing():
    import time

    from django.db import transaction

    from tests.concurrency import race

    results_rollups_refresh()

    def hold_the_lock():  # another worker's refresh, still running
        with transaction.atomic():
            RollupState.objects.select_for_update().get()
            time.sleep(3)

    def refresh_meanwhile():
        time.sleep(1)  # the other process holds the state row by now
        return results_rollups_refresh() is None

    holder, second = race(hold_the_lock, refresh_meanwhile)

    assert holder.ok, holder.detail
    assert second.ok, second.detail
    assert second.value is True  # it did nothing
    assert results_rollups_refresh() is not None


def test_the_refresh_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["results-rollups-refresh"]

    assert entry["task"] == "campaigns.results_rollups_refresh"
    assert entry["schedule"] <= 600


def _dashboard_queries(client, size: int) -> int:
    store = StoreFactory()
    campaign = Campaign.objects.filter(name="Spring").first() or sent_campaign("Spring", offer=OfferFactory())
    for n in range(size):
        person = CustomerFactory(source="store" if n % 2 else "web", source_store=store if n % 2 else None)
        buy(person, march(3 + n % 5), "12.50", channel="store" if n % 3 else "online", store=store)
        deliver(campaign, person, opened_at=march(2, 10) if n % 4 == 0 else None)
    results_rollups_refresh(full=True)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/admin/campaigns/goaldashboard/?from=2026-03-01&to=2026-03-10")
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_dashboard_page_makes_the_same_number_of_queries_whatever_the_data(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)

    small = _dashboard_queries(client, 2)
    larger = _dashboard_queries(client, 40)

    assert small == larger
    assert selectors.revenue(PERIOD).rows[-1][1] == 42
