"""The journey engine: publishing, triggers, the tick, exits, merges, crashes and counts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.journeys.selectors import journey_counts
from campaigns.journeys.services import journey_publish
from campaigns.journeys.steps import JourneyStepsError
from campaigns.journeys.tick import journeys_tick
from campaigns.models import Delivery, Enrolment, Journey, JourneyStepRun, OutboxMessage
from tests.factories.customers import PurchaseFactory

from .conftest import consented, email_message, live_journey, two_step_steps

pytestmark = pytest.mark.django_db


def tick(now):
    return journeys_tick(now=now)


def test_publish_refuses_unknown_kinds_loops_and_dangling_steps():
    # given a draft journey
    journey = Journey.objects.create(name="Bad", trigger=Journey.Trigger.PURCHASE)
    message = email_message()
    bad = [
        {"key": "a", "kind": "send", "message": message.pk, "next": "b"},
        {"key": "b", "kind": "wait", "hours": 1, "next": "a"},
        {"key": "c", "kind": "teleport"},
        {"key": "d", "kind": "send", "message": 999999, "next": "nowhere"},
    ]
    # when it is published, then every problem is named and nothing changed
    with pytest.raises(JourneyStepsError) as error:
        journey_publish(journey=journey, steps=bad)
    assert "unknown kind" in str(error.value)
    journey.refresh_from_db()
    assert journey.status == Journey.Status.DRAFT
    assert journey.live_version is None
    with pytest.raises(JourneyStepsError, match="loop"):
        journey_publish(journey=journey, steps=bad[:2])


@pytest.mark.postgres
def test_purchase_trigger_enrols_once_and_sends_through_the_engine(django_capture_on_commit_callbacks, celery_eager):
    # given a live post-purchase journey and a consenting customer who buys after it went live
    start = timezone.now()
    journey = live_journey(now=start)
    customer = consented()
    purchase = PurchaseFactory(customer=customer, occurred_at=start)
    # when the tick runs twice (the second reads the same purchase again through its overlap)
    with django_capture_on_commit_callbacks(execute=True):
        first = tick(start + timedelta(minutes=1))
    second = tick(start + timedelta(minutes=2))
    # then one enrolment, one run of the first step, one delivery, which landed in the outbox
    assert first.enrolled == 1
    assert second.enrolled == 0
    enrolment = Enrolment.objects.get(journey=journey)
    assert (enrolment.customer_id, enrolment.step_key) == (customer.pk, "wait")  # waiting on the wait step
    assert enrolment.due_at > start + timedelta(hours=47)
    run = JourneyStepRun.objects.get(enrolment=enrolment, step_key="welcome")
    delivery = Delivery.objects.get(cause_type=Delivery.Cause.JOURNEY_STEP, cause_id=run.pk)
    assert delivery.status == Delivery.Status.SENT
    assert OutboxMessage.objects.filter(delivery_id=delivery.pk, to=customer.email).exists()
    assert purchase.pk  # the trigger's event


@pytest.mark.postgres
def test_no_consent_means_no_delivery_but_the_journey_goes_on():
    start = timezone.now()
    journey = live_journey(now=start)
    from tests.factories import CustomerFactory

    PurchaseFactory(customer=CustomerFactory(), occurred_at=start)
    tick(start + timedelta(minutes=1))
    run = JourneyStepRun.objects.get(enrolment__journey=journey, step_key="welcome")
    assert run.outcome == "unreachable"
    assert not Delivery.objects.filter(cause_type=Delivery.Cause.JOURNEY_STEP).exists()


@pytest.mark.postgres
def test_exit_on_purchase_between_steps():
    # given someone who entered and got the first mail, waiting two days for the second
    start = timezone.now()
    journey = live_journey(now=start, exit_rules=["purchase"])
    customer = consented()
    PurchaseFactory(customer=customer, occurred_at=start)
    tick(start + timedelta(minutes=1))
    # when they buy again before the second step
    PurchaseFactory(customer=customer, occurred_at=start + timedelta(hours=5))
    tick(start + timedelta(hours=49))
    # then they left the journey instead of getting the second mail
    enrolment = Enrolment.objects.get(journey=journey)
    assert (enrolment.status, enrolment.exit_reason) == ("exited", "purchase")
    assert not JourneyStepRun.objects.filter(enrolment=enrolment, step_key="offer").exists()


@pytest.mark.postgres
def test_consent_withdrawn_between_steps_exits():
    from customers.models import ConsentState

    start = timezone.now()
    journey = live_journey(now=start, exit_rules=["consent_withdrawn"])
    customer = consented()
    PurchaseFactory(customer=customer, occurred_at=start)
    tick(start + timedelta(minutes=1))
    ConsentState.objects.filter(customer=customer).update(status="withdrawn")
    tick(start + timedelta(hours=49))
    enrolment = Enrolment.objects.get(journey=journey)
    assert (enrolment.status, enrolment.exit_reason) == ("exited", "consent_withdrawn")


@pytest.mark.postgres
def test_leaving_the_entry_segment_between_steps_exits_only_who_left():
    from campaigns.models import Segment
    from customers.models import Customer

    start = timezone.now()
    vips = Segment.objects.create(
        name="VIP", rules={"match": "all", "rules": [{"type": "attribute", "key": "vip", "op": "eq", "value": 1}]}
    )
    journey = live_journey(now=start, exit_rules=["left_segment"], entry_segment=vips)
    stays, leaves = consented(attributes={"vip": 1}), consented(attributes={"vip": 1})
    for customer in (stays, leaves):
        PurchaseFactory(customer=customer, occurred_at=start)
    tick(start + timedelta(minutes=1))
    Customer.objects.filter(pk=leaves.pk).update(attributes={"vip": 0})
    tick(start + timedelta(hours=49))
    assert Enrolment.objects.get(journey=journey, customer=leaves).exit_reason == "left_segment"
    assert Enrolment.objects.get(journey=journey, customer=stays).status == "completed"
    assert not JourneyStepRun.objects.filter(enrolment__customer=leaves, step_key="offer").exists()


@pytest.mark.postgres
def test_merge_during_a_journey_continues_on_the_survivor_once():
    # given two profiles in the journey, one waiting for step 2, the survivor not in it
    start = timezone.now()
    journey = live_journey(now=start)
    other, survivor, twin = consented(), consented(), consented()
    PurchaseFactory(customer=other, occurred_at=start)
    PurchaseFactory(customer=twin, occurred_at=start)
    tick(start + timedelta(minutes=1))
    # when other merges into survivor, and twin merges into a survivor that is already inside
    from customers.models import Customer

    Customer.objects.filter(pk=other.pk).update(merged_into=survivor)
    second_survivor = consented()
    PurchaseFactory(customer=second_survivor, occurred_at=start + timedelta(minutes=1))
    tick(start + timedelta(minutes=2))
    Customer.objects.filter(pk=twin.pk).update(merged_into=second_survivor)
    tick(start + timedelta(hours=49))
    # then the first enrolment continued on the survivor and the second exited "merged"
    moved = Enrolment.objects.get(journey=journey, customer=survivor)
    assert moved.status == "completed"
    assert JourneyStepRun.objects.filter(enrolment=moved, step_key="offer").count() == 1
    assert Enrolment.objects.get(journey=journey, customer=twin).exit_reason == "merged"


@pytest.mark.postgres
def test_a_crash_between_step_decided_and_step_recorded_sends_once(monkeypatch):
    # given an enrolment due for its first step
    from campaigns.journeys import tick as tick_module

    start = timezone.now()
    journey = live_journey(now=start)
    PurchaseFactory(customer=consented(), occurred_at=start)
    original = tick_module._advance

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost")

    # when the tick dies after inserting the step run and deliveries but before moving the enrolment
    monkeypatch.setattr(tick_module, "_advance", crash)
    with pytest.raises(RuntimeError):
        tick(start + timedelta(minutes=1))
    assert not JourneyStepRun.objects.exists()
    assert not Delivery.objects.exists()
    monkeypatch.setattr(tick_module, "_advance", original)
    tick(start + timedelta(minutes=2))
    tick(start + timedelta(minutes=3))
    # then the step ran once and wrote one delivery
    assert JourneyStepRun.objects.filter(enrolment__journey=journey, step_key="welcome").count() == 1
    assert Delivery.objects.filter(cause_type=Delivery.Cause.JOURNEY_STEP).count() == 1


@pytest.mark.postgres
def test_editing_a_live_journey_keeps_everyone_in_place():
    # given someone waiting on step "wait" (welcome sent, 48 h to go)
    start = timezone.now()
    message = email_message()
    journey = live_journey(now=start, steps=two_step_steps(message))
    waiting, late = consented(), consented()
    PurchaseFactory(customer=late, occurred_at=start)
    tick(start + timedelta(minutes=1))
    # when a new version replaces "wait" and "offer" by a shorter "hold" and a "thanks" step
    new_steps = [
        {"key": "welcome", "kind": "send", "message": message.pk, "next": "hold"},
        {"key": "hold", "kind": "wait", "hours": 24, "next": "thanks"},
        {"key": "thanks", "kind": "send", "message": email_message().pk},
    ]
    with pytest.raises(JourneyStepsError, match="removed step 'wait'"):
        journey_publish(journey=journey, steps=new_steps, now=start + timedelta(minutes=2))
    version = journey_publish(
        journey=journey, steps=new_steps, moves={"wait": "hold"}, now=start + timedelta(minutes=2)
    )
    # then the moved enrolment waits on the new version's "hold", and nobody gets "welcome" twice
    enrolment = Enrolment.objects.get(journey=journey, customer=late)
    assert (enrolment.version_id, enrolment.step_key) == (version.pk, "hold")
    tick(start + timedelta(minutes=3))
    tick(start + timedelta(hours=25))
    assert JourneyStepRun.objects.filter(enrolment=enrolment, step_key="welcome").count() == 1
    assert JourneyStepRun.objects.filter(enrolment=enrolment, step_key="thanks").count() == 1
    assert waiting.pk


@pytest.mark.postgres
def test_reentry_rules():
    start = timezone.now()
    never = live_journey(now=start, name="never")
    each = live_journey(now=start, name="each", reentry=Journey.Reentry.EACH_TIME)
    after = live_journey(now=start, name="after", reentry=Journey.Reentry.AFTER_DAYS, reentry_days=10)
    customer = consented()
    for day in (0, 1, 12):
        at = start + timedelta(days=day, minutes=1)
        purchase = PurchaseFactory(customer=customer, occurred_at=at - timedelta(seconds=30))
        from customers.models import Purchase

        Purchase.objects.filter(pk=purchase.pk).update(created_at=at - timedelta(seconds=30))
        tick(at)
    assert Enrolment.objects.filter(journey=never).count() == 1
    assert Enrolment.objects.filter(journey=each).count() == 3
    assert Enrolment.objects.filter(journey=after).count() == 2


@pytest.mark.postgres
def test_counts_equal_a_recount_of_the_rows():
    start = timezone.now()
    journey = live_journey(now=start, exit_rules=["purchase"], goal={"kind": "purchase", "days": 14})
    people = [consented() for _ in range(5)]
    for person in people:
        PurchaseFactory(customer=person, occurred_at=start)
    tick(start + timedelta(minutes=1))
    PurchaseFactory(customer=people[0], occurred_at=start + timedelta(hours=1))
    tick(start + timedelta(hours=2))
    tick(start + timedelta(hours=49))
    counts = journey_counts(journey)
    rows = Enrolment.objects.filter(journey=journey)
    assert counts.entered == rows.count() == 5
    assert counts.exited == {"purchase": 1}
    assert counts.completed == rows.filter(status="completed").count() == 4
    assert counts.converted == rows.filter(converted_at__isnull=False).count() == 1
    assert counts.sent == {
        "welcome": JourneyStepRun.objects.filter(step_key="welcome", outcome="sent").count(),
        "offer": 4,
    }


@pytest.mark.postgres
def test_query_count_of_a_tick_does_not_grow_with_enrolments(django_assert_max_num_queries):
    start = timezone.now()
    live_journey(now=start)

    def queries_for(n, at):
        for _ in range(n):
            PurchaseFactory(customer=consented(), occurred_at=at)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            tick(at + timedelta(minutes=1))
        return len(captured)

    few = queries_for(2, start)
    many = queries_for(20, start + timedelta(minutes=5))
    assert many == few
