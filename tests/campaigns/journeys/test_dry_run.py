"""The dry run: who would enter in the next 7 days, and what each would receive when."""

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.urls import reverse

from campaigns.journeys.dry_run import journey_dry_run
from campaigns.models import Enrolment, Journey, JourneyVersion
from tests.factories import CustomerFactory, MarketingUserFactory, PurchaseFactory
from tests.factories.campaigns import EmailVariantFactory, MessageFactory, SmsVariantFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


@pytest.fixture
def birthday_journey():
    gift = MessageFactory(name="Happy birthday")
    EmailVariantFactory(message=gift)
    SmsVariantFactory(message=gift)
    journey = Journey.objects.create(
        name="Birthday", trigger="date", trigger_params={"field": "birthday", "time": "09:00"}
    )
    steps = [
        {"key": "wait", "kind": "wait", "hours": 2, "next": "gift"},
        {"key": "gift", "kind": "send", "message": gift.pk, "next": "split"},
        {"key": "split", "kind": "branch", "condition": {"random": 30}, "yes": "again", "no": "done"},
        {"key": "again", "kind": "wait_until", "time": "10:00", "weekdays": [0, 1, 2, 3, 4], "next": "gift2"},
        {"key": "gift2", "kind": "send", "message": gift.pk},
        {"key": "done", "kind": "exit"},
    ]
    JourneyVersion.objects.create(journey=journey, number=1, steps=steps)
    return journey


@time_machine.travel(dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC), tick=False)  # a Tuesday
def test_birthday_lists_who_has_a_birthday_in_the_next_seven_days_at_nine_their_time(birthday_journey):
    in_three_days = CustomerFactory(first_name="Ada", birthday=dt.date(1990, 3, 13), time_zone="America/New_York")
    in_tokyo = CustomerFactory(first_name="Ken", birthday=dt.date(1985, 3, 16), time_zone="Asia/Tokyo")
    today_already_past = CustomerFactory(birthday=dt.date(1980, 3, 10), time_zone="America/New_York")  # 09:00 passed
    in_ten_days = CustomerFactory(birthday=dt.date(1990, 3, 20), time_zone="America/New_York")
    no_birthday = CustomerFactory(birthday=None)
    steps = JourneyVersion.objects.get(journey=birthday_journey).steps

    run = journey_dry_run(journey=birthday_journey, steps=steps)

    assert run.total == 2
    assert not run.estimate
    assert [entrant.customer for entrant in run.entrants] == [in_three_days, in_tokyo]
    ada = run.entrants[0]
    assert ada.enters_at == dt.datetime(2026, 3, 13, 9, 0, tzinfo=NEW_YORK)
    yes, no = ada.paths  # a random split shows both paths with their share
    assert yes.label == "random split: yes (30%)"
    assert no.label == "random split: no (70%)"
    # the first send is two hours after entering, on the channels the customer has an address for
    assert yes.items[0].at == dt.datetime(2026, 3, 13, 11, 0, tzinfo=NEW_YORK)
    assert yes.items[0].text.startswith("Send “Happy birthday”")
    # Friday 13 March 11:00 → the next weekday 10:00 is Monday 16 March
    assert yes.items[1].at == dt.datetime(2026, 3, 16, 10, 0, tzinfo=NEW_YORK)
    assert len(no.items) == 1
    assert run.entrants[1].enters_at == dt.datetime(2026, 3, 16, 9, 0, tzinfo=TOKYO)
    assert {today_already_past.pk, in_ten_days.pk, no_birthday.pk}.isdisjoint(e.customer.pk for e in run.entrants)


@time_machine.travel(dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC), tick=False)
def test_people_already_enrolled_do_not_enter_again_when_reentry_is_never(birthday_journey):
    enrolled = CustomerFactory(birthday=dt.date(1990, 3, 12), time_zone="UTC")
    other = CustomerFactory(birthday=dt.date(1990, 3, 12), time_zone="UTC")
    version = JourneyVersion.objects.get(journey=birthday_journey)
    Enrolment.objects.create(
        journey=birthday_journey, version=version, customer=enrolled, entered_at=dt.datetime(2025, 3, 12, tzinfo=dt.UTC)
    )

    run = journey_dry_run(journey=birthday_journey, steps=version.steps)

    assert [entrant.customer for entrant in run.entrants] == [other]


@time_machine.travel(dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC), tick=False)
def test_only_the_first_fifty_are_walked_but_all_are_counted(birthday_journey):
    for _ in range(53):
        CustomerFactory(birthday=dt.date(1990, 3, 12), time_zone="UTC")

    run = journey_dry_run(journey=birthday_journey, steps=JourneyVersion.objects.get(journey=birthday_journey).steps)

    assert run.total == 53
    assert len(run.entrants) == 50


@time_machine.travel(dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC), tick=False)
def test_inactivity_lists_who_crosses_the_threshold_in_the_window():
    journey = Journey.objects.create(name="Win-back", trigger="inactivity", trigger_params={"days": 90})
    now = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
    crossing = CustomerFactory()
    PurchaseFactory(customer=crossing, occurred_at=now - dt.timedelta(days=87))
    long_gone = CustomerFactory()
    PurchaseFactory(customer=long_gone, occurred_at=now - dt.timedelta(days=120))
    recent = CustomerFactory()
    PurchaseFactory(customer=recent, occurred_at=now - dt.timedelta(days=87))
    PurchaseFactory(customer=recent, occurred_at=now - dt.timedelta(days=2))

    run = journey_dry_run(journey=journey, steps=[{"key": "x", "kind": "exit"}])

    assert [entrant.customer for entrant in run.entrants] == [crossing]
    assert run.entrants[0].enters_at == now + dt.timedelta(days=3)


@time_machine.travel(dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC), tick=False)
def test_an_event_trigger_is_an_estimate_from_last_weeks_events():
    journey = Journey.objects.create(name="Thanks", trigger="purchase", trigger_params={"channel": "any"})
    buyer = CustomerFactory()
    PurchaseFactory(customer=buyer, occurred_at=dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC))

    run = journey_dry_run(journey=journey, steps=[])

    assert run.estimate
    assert "estimate" in run.note.lower()
    assert [entrant.customer for entrant in run.entrants] == [buyer]
    assert run.entrants[0].enters_at == dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


@time_machine.travel(dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC), tick=False)
def test_dry_run_page_is_linked_from_the_journey_and_lists_entrants(client, birthday_journey):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    CustomerFactory(first_name="Ada", birthday=dt.date(1990, 3, 13), time_zone="America/New_York")

    change = client.get(reverse("admin:campaigns_journey_change", args=[birthday_journey.pk])).content.decode()
    page = client.get(reverse("admin:campaigns_journey_dry_run", args=[birthday_journey.pk])).content.decode()

    assert reverse("admin:campaigns_journey_dry_run", args=[birthday_journey.pk]) in change
    assert "Ada" in page
    assert "Happy birthday" in page
    assert 'id="dry-run-total"' in page


@time_machine.travel(dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC), tick=False)
def test_replenishment_lists_who_runs_out_in_the_next_seven_days_at_the_journeys_time():
    from tests.factories.customers import ProductCategoryFactory

    shampoo = ProductCategoryFactory(name="Shampoo", replenish_after_days=30)
    coffee = ProductCategoryFactory(name="Coffee", replenish_after_days=10)
    message = MessageFactory(name="Stock up")
    EmailVariantFactory(message=message)
    journey = Journey.objects.create(
        name="Restock", trigger="replenishment_due", trigger_params={"time": "09:00", "category_ids": [shampoo.pk]}
    )
    steps = [{"key": "reminder", "kind": "send", "message": message.pk}]
    due, repurchased, other_category = (CustomerFactory(time_zone="America/New_York") for _ in range(3))
    PurchaseFactory(customer=due, occurred_at=dt.datetime(2026, 2, 12, 20, 0, tzinfo=dt.UTC), categories=[shampoo])
    PurchaseFactory(customer=repurchased, occurred_at=dt.datetime(2026, 2, 12, 20, tzinfo=dt.UTC), categories=[shampoo])
    PurchaseFactory(customer=repurchased, occurred_at=dt.datetime(2026, 3, 1, 20, tzinfo=dt.UTC), categories=[shampoo])
    PurchaseFactory(
        customer=other_category, occurred_at=dt.datetime(2026, 3, 5, 20, tzinfo=dt.UTC), categories=[coffee]
    )

    run = journey_dry_run(journey=journey, steps=steps)

    assert not run.estimate
    assert [entrant.customer for entrant in run.entrants] == [due]
    assert run.entrants[0].enters_at == dt.datetime(2026, 3, 14, 9, 0, tzinfo=NEW_YORK)
