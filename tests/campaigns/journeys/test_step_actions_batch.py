"""The points and attribute steps act for a whole batch at once, through loyalty's and customers'
set-based services: their statements do not grow with the number of people on the step."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.journeys.services import journey_archive
from campaigns.journeys.tick import TickResult, enrolments_step_batch
from campaigns.models import Enrolment, JourneyStepRun
from customers.exceptions import CustomerError
from customers.services.editing import customers_attribute_set
from loyalty.exceptions import InvalidAmount
from loyalty.models import LedgerEntry, LoyaltyAccount
from loyalty.services.accounts import points_credit_many
from tests.factories import CustomerFactory
from tests.factories.loyalty import LoyaltyAccountFactory, ProgrammeFactory

from .conftest import consented, live_journey

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2027, 1, 10, 7, 0, tzinfo=dt.UTC)


def journey_on(action: dict):
    steps = [{**action, "key": "act", "next": "hold"}, {"key": "hold", "kind": "wait", "hours": 24}]
    return live_journey(now=NOW, steps=steps)


def due_on_the_step(journey, customers):
    for customer in customers:
        Enrolment.objects.create(
            journey=journey,
            version=journey.live_version,
            customer=customer,
            step_key="act",
            due_at=NOW,
            entered_at=NOW,
        )


def statements_of_one_batch() -> int:
    with CaptureQueriesContext(connection) as queries:
        assert enrolments_step_batch(now=NOW, batch_size=1000, result=TickResult())
    return len(queries)


@pytest.mark.parametrize(
    "action",
    [{"kind": "points", "points": 25}, {"kind": "attribute", "name": "welcomed", "value": "yes"}],
    ids=["points", "attribute"],
)
def test_a_batch_of_twelve_takes_as_many_statements_as_a_batch_of_two(action):
    programme = ProgrammeFactory()
    counts = []
    for size in (2, 12):
        journey = journey_on(action)
        members = [LoyaltyAccountFactory(programme=programme, customer=consented()).customer for _ in range(size)]
        due_on_the_step(journey, [*members, consented()])  # and one without an account
        counts.append(statements_of_one_batch())
        journey_archive(journey=journey)  # the tick claims per moving journey: keep to one
    assert counts[0] == counts[1]


def test_the_points_step_credits_each_member_once_and_records_who_had_no_account():
    journey = journey_on({"kind": "points", "points": 25, "reason": "Welcome bonus"})
    members = [LoyaltyAccountFactory(customer=consented()) for _ in range(3)]
    guest = consented()
    due_on_the_step(journey, [m.customer for m in members] + [guest])
    statements_of_one_batch()
    Enrolment.objects.filter(journey=journey).update(step_key="act", due_at=NOW)  # as if due again
    statements_of_one_batch()
    for member in members:
        member.refresh_from_db()
        entry = LedgerEntry.objects.get(account=member)
        run = JourneyStepRun.objects.get(enrolment__customer=member.customer, step_key="act")
        assert (member.points_balance, entry.points, entry.balance_after) == (25, 25, 25)
        assert (entry.idempotency_key, entry.reason) == (f"journey_step:{run.pk}", "Welcome bonus")
        assert run.outcome == "credited"
    assert JourneyStepRun.objects.get(enrolment__customer=guest, step_key="act").outcome == "no_account"


def test_points_credit_many_keeps_each_balance_and_expiry_right():
    programme = ProgrammeFactory(points_expire_after_days=365)
    rich = LoyaltyAccountFactory(programme=programme, points_balance=100)
    LedgerEntry.objects.create(
        account=rich, kind="adjust", points=100, balance_after=100, occurred_at=NOW, idempotency_key="seed"
    )
    closed = LoyaltyAccountFactory(programme=programme, status=LoyaltyAccount.Status.CLOSED)
    nobody = CustomerFactory()
    credited = points_credit_many(
        credits=[(rich.customer_id, "a"), (rich.customer_id, "b"), (closed.customer_id, "c"), (nobody.pk, "d")],
        points=10,
        kind=LedgerEntry.Kind.ADJUST,
        reason="bonus",
        occurred_at=NOW,
    )
    assert credited == {"a", "b"}
    rich.refresh_from_db()
    assert rich.points_balance == 120
    entries = LedgerEntry.objects.filter(account=rich, idempotency_key__in=["a", "b"]).order_by("balance_after")
    assert [e.balance_after for e in entries] == [110, 120]
    assert {e.expires_at for e in entries} == {NOW + dt.timedelta(days=365)}
    # the same keys again credit nothing more, and say they were credited
    assert points_credit_many(
        credits=[(rich.customer_id, "a")], points=10, kind="adjust", reason="bonus", occurred_at=NOW
    ) == {"a"}
    rich.refresh_from_db()
    assert rich.points_balance == 120
    assert not LedgerEntry.objects.filter(account=closed).exists()


@pytest.mark.parametrize("points", [0, -5, True, 2.5, 10_000_001])
def test_points_credit_many_refuses_points_that_are_not_a_positive_whole_number(points):
    account = LoyaltyAccountFactory()
    with pytest.raises(InvalidAmount):
        points_credit_many(
            credits=[(account.customer_id, "k")], points=points, kind="adjust", reason="", occurred_at=NOW
        )
    assert not LedgerEntry.objects.exists()


def test_customers_attribute_set_keeps_the_other_attributes_and_leaves_merged_or_erased_profiles_alone():
    kept = CustomerFactory(attributes={"size": "42"})
    fresh = CustomerFactory(attributes={})
    survivor = CustomerFactory()
    merged = CustomerFactory(attributes={}, merged_into=survivor)
    erased = CustomerFactory(attributes={})
    type(erased).objects.filter(pk=erased.pk).update(erased_at=NOW)
    changed = customers_attribute_set(
        customer_ids=[kept.pk, fresh.pk, merged.pk, erased.pk], name=" tier'\"} ", value="gold"
    )
    assert changed == 2
    for customer in (kept, fresh, merged, erased):
        customer.refresh_from_db()
    assert kept.attributes == {"size": "42", "tier'\"}": "gold"}
    assert fresh.attributes == {"tier'\"}": "gold"}
    assert merged.attributes == {}
    assert erased.attributes == {}


@pytest.mark.parametrize(("name", "value"), [("", "x"), ("a" * 65, "x"), ("ok", "nul\x00"), ("ok", ["list"])])
def test_customers_attribute_set_refuses_bad_names_and_values(name, value):
    customer = CustomerFactory(attributes={"a": "b"})
    with pytest.raises(CustomerError):
        customers_attribute_set(customer_ids=[customer.pk], name=name, value=value)
    customer.refresh_from_db()
    assert customer.attributes == {"a": "b"}
