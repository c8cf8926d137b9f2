"""Coupon, points and attribute steps act once per enrolment through loyalty's and customers'
services, and a message after a coupon step carries that enrolment's own code."""

import datetime as dt

import pytest
import time_machine

from campaigns.journeys.tick import journeys_tick
from campaigns.models import Enrolment, Journey, JourneyStepRun, OutboxMessage
from loyalty.models import CouponCode, LedgerEntry
from tests.factories.campaigns import EmailVariantFactory, MessageFactory
from tests.factories.customers import PurchaseFactory
from tests.factories.loyalty import LoyaltyAccountFactory, OfferFactory

from .conftest import consented, live_journey

pytestmark = pytest.mark.django_db
UTC = dt.UTC
START = dt.datetime(2027, 1, 10, 7, 0, tzinfo=UTC)


def after(minutes):
    return START + dt.timedelta(minutes=minutes)


def tick(moment):
    with time_machine.travel(moment, tick=False):
        return journeys_tick(now=moment)


def one_action_journey(action: dict) -> Journey:
    steps = [{**action, "key": "act", "next": "hold"}, {"key": "hold", "kind": "wait", "hours": 24}]
    with time_machine.travel(START, tick=False):
        return live_journey(now=START, steps=steps)


def bought(customer):
    with time_machine.travel(after(1), tick=False):
        PurchaseFactory(customer=customer, occurred_at=after(1))


def run_the_step_again(journey, moment):
    """As if a crash had put everyone back on the step after it ran: due on it again."""
    Enrolment.objects.filter(journey=journey).update(step_key="act", due_at=moment)
    tick(moment)


def test_coupon_step_issues_one_code_per_enrolment_even_when_the_step_runs_again():
    # given a journey whose first step hands out a code of an offer; a member and a non-member enter
    offer = OfferFactory()
    journey = one_action_journey({"kind": "coupon", "offer": offer.pk})
    member = LoyaltyAccountFactory(programme=offer.programme, customer=consented())
    guest = consented()
    bought(member.customer)
    bought(guest)
    # when the tick runs, and the step comes due again for both
    tick(after(2))
    run_the_step_again(journey, after(3))
    # then each enrolment holds exactly one issued code, recorded on its run
    issued = CouponCode.objects.filter(offer=offer, issued_at__isnull=False)
    assert issued.count() == 2
    runs = JourneyStepRun.objects.filter(enrolment__journey=journey, step_key="act")
    assert sorted(runs.values_list("coupon_code_id", flat=True)) == sorted(issued.values_list("pk", flat=True))
    assert set(runs.values_list("outcome", flat=True)) == {"issued"}
    member_code = runs.get(enrolment__customer=member.customer).coupon_code
    assert member_code.account_id == member.pk  # only the member may redeem it
    assert member_code.issue_reference == f"journey:{journey.pk}:act"


def test_points_step_credits_once_per_enrolment_through_the_ledger():
    # given a journey crediting 50 bonus points; a member and a non-member enter
    journey = one_action_journey({"kind": "points", "points": 50})
    member = LoyaltyAccountFactory(customer=consented())
    guest = consented()
    bought(member.customer)
    bought(guest)
    # when the tick runs, and the step comes due again
    tick(after(2))
    run_the_step_again(journey, after(3))
    # then the member got 50 points once, in one ledger entry keyed by the run; the guest nothing
    member.refresh_from_db()
    assert member.points_balance == 50
    entry = LedgerEntry.objects.get(account=member)
    run = JourneyStepRun.objects.get(enrolment__customer=member.customer, step_key="act")
    assert entry.idempotency_key == f"journey_step:{run.pk}"
    assert run.outcome == "credited"
    assert JourneyStepRun.objects.get(enrolment__customer=guest, step_key="act").outcome == "no_account"


def test_attribute_step_sets_the_attribute_once_through_the_profile_service():
    journey = one_action_journey({"kind": "attribute", "name": "welcomed", "value": "yes"})
    customer = consented(attributes={"shoe_size": "42"})
    bought(customer)
    tick(after(2))
    customer.refresh_from_db()
    assert customer.attributes == {"shoe_size": "42", "welcomed": "yes"}
    # a change made since is not overwritten by the step coming due again
    customer.attributes = {"shoe_size": "42", "welcomed": "no"}
    customer.save(update_fields=["attributes"])
    run_the_step_again(journey, after(3))
    customer.refresh_from_db()
    assert customer.attributes["welcomed"] == "no"
    assert JourneyStepRun.objects.get(enrolment__journey=journey, step_key="act").outcome == "set"


def test_a_birthday_journey_sends_each_customer_their_own_code(django_capture_on_commit_callbacks, celery_eager):
    # given a birthday journey: a code of the birthday offer, then an email showing it
    offer = OfferFactory(valid_until=START + dt.timedelta(days=60))
    message = MessageFactory()
    EmailVariantFactory(message=message, html_body="<p>Happy birthday! Your code: {{ coupon_code }}</p>")
    steps = [
        {"key": "gift", "kind": "coupon", "offer": offer.pk, "next": "card"},
        {"key": "card", "kind": "send", "message": message.pk},
    ]
    with time_machine.travel(START, tick=False):
        journey = live_journey(
            now=START,
            steps=steps,
            trigger=Journey.Trigger.DATE,
            trigger_params={"field": "birthday", "time": "09:00"},
            reentry=Journey.Reentry.EACH_TIME,
        )
    # two Parisians born on 10 January (09:00 in Paris is 08:00 UTC)
    twins = [
        consented(time_zone="Europe/Paris", time_zone_source="explicit", birthday=dt.date(1990, 1, 10))
        for _ in range(2)
    ]
    # when the tick runs after nine in Paris
    with django_capture_on_commit_callbacks(execute=True):
        tick(after(61))
    # then each got one email holding the code issued to them
    for customer in twins:
        run = JourneyStepRun.objects.get(enrolment__journey=journey, enrolment__customer=customer, step_key="gift")
        mail = OutboxMessage.objects.get(to=customer.email)
        assert run.coupon_code.code in mail.html
    codes = {run.coupon_code.code for run in JourneyStepRun.objects.filter(step_key="gift")}
    assert len(codes) == 2
