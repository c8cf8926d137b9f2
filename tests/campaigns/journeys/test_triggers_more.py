"""Each trigger enrols every eligible customer once, and nobody twice although each scan re-reads the
ten minutes before its watermark; days pass under time-machine."""

import datetime as dt

import pytest
import time_machine

from campaigns.journeys.tick import journeys_tick
from campaigns.models import Enrolment, Journey
from customers.models import ConsentEvidence, ConsentMethod, Source
from loyalty.models import CouponCode, LedgerEntry, TierChange
from loyalty.services.accounts import ledger_append
from tests.factories import CustomerFactory
from tests.factories.campaigns import SegmentFactory
from tests.factories.customers import PurchaseFactory, StoreFactory
from tests.factories.loyalty import CouponCodeFactory, LoyaltyAccountFactory, OfferFactory, TierFactory

from .conftest import consented, live_journey

pytestmark = pytest.mark.django_db
UTC = dt.UTC
START = dt.datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
EACH_TIME = Journey.Reentry.EACH_TIME


def at(moment):
    return time_machine.travel(moment, tick=False)


def journey_of(trigger, params=None, **fields):
    fields.setdefault("reentry", EACH_TIME)
    with at(START):
        return live_journey(now=START, trigger=trigger, trigger_params=params or {}, **fields)


def tick_at(*moments) -> list[int]:
    """The tick at each moment (in order); the number enrolled by each."""
    enrolled = []
    for moment in moments:
        with at(moment):
            enrolled.append(journeys_tick(now=moment).enrolled)
    return enrolled


def minutes(n):
    return START + dt.timedelta(minutes=n)


def entered(journey) -> list[int]:
    return sorted(Enrolment.objects.filter(journey=journey).values_list("customer_id", flat=True))


def evidence(customer, *, channel="email", action=ConsentEvidence.Action.CONFIRM, method=None, store=None):
    method = method or (ConsentMethod.EMAIL_CONFIRMATION if action == "confirm" else ConsentMethod.CHECKOUT)
    return ConsentEvidence.objects.create(
        customer=customer, channel=channel, action=action, method=method, occurred_at=dt.datetime.now(UTC), store=store
    )


def test_consent_confirmed_enrols_each_confirmation_once_by_channel():
    # given a welcome journey on email confirmations and one on any channel
    email_only = journey_of(Journey.Trigger.CONSENT_CONFIRMED, {"channel": "email"})
    any_channel = journey_of(Journey.Trigger.CONSENT_CONFIRMED, {"channel": "any"}, name="Any")
    with at(minutes(-30)):
        before = consented()
        evidence(before)  # confirmed before the journeys went live
    with at(minutes(5)):
        by_email, by_sms = consented(), consented()
        evidence(by_email)
        evidence(by_sms, channel="sms")
    # when the tick runs, runs again a minute later (re-reading the overlap) and the next day
    counts = tick_at(minutes(6), minutes(7), minutes(15), minutes(24 * 60))
    # then each confirmation entered once: email only for the first, both for "any"
    assert entered(email_only) == [by_email.pk]
    assert entered(any_channel) == sorted([by_email.pk, by_sms.pk])
    assert counts == [3, 0, 0, 0]


def test_first_capture_is_a_new_till_profile_or_an_older_profiles_first_checkout_consent():
    # given a first-capture journey for store A only
    store_a, store_b = StoreFactory(), StoreFactory()
    journey = journey_of(Journey.Trigger.FIRST_CAPTURE, {"store_ids": [store_a.pk]})
    with at(minutes(-60 * 24)):
        older, regular = CustomerFactory(source=Source.WEB), CustomerFactory(source=Source.WEB)
        evidence(regular, action="grant", store=store_a)  # captured at a till before
    with at(minutes(5)):
        new_at_a = CustomerFactory(source=Source.STORE, source_store=store_a)
        evidence(new_at_a, action="grant", store=store_a)  # the new profile's own consent: still one entry
        evidence(new_at_a, channel="sms", action="grant", store=store_a)
        new_at_b = CustomerFactory(source=Source.STORE, source_store=store_b)
        evidence(older, action="grant", store=store_a)
        evidence(regular, action="grant", store=store_a)
    with at(minutes(40)):
        evidence(older, channel="sms", action="grant", store=store_a)  # a second checkout consent later
    # when the tick runs across the captures and their overlaps
    counts = tick_at(minutes(6), minutes(8), minutes(30), minutes(41), minutes(45), minutes(60 * 24))
    # then the new profile at A and the older profile's first checkout consent entered, once each
    assert entered(journey) == sorted([new_at_a.pk, older.pk])
    assert new_at_b.pk not in entered(journey)
    assert sum(counts) == 2


def test_inactivity_enrols_once_when_the_last_purchase_turns_n_days_old():
    # given a win-back journey after 30 days without a purchase
    journey = journey_of(Journey.Trigger.INACTIVITY, {"days": 30})
    lapsing, loyal, long_gone = consented(), consented(), consented()
    PurchaseFactory(customer=lapsing, occurred_at=START - dt.timedelta(days=30) + dt.timedelta(hours=2))
    PurchaseFactory(customer=loyal, occurred_at=START - dt.timedelta(days=30) + dt.timedelta(hours=2))
    PurchaseFactory(customer=loyal, occurred_at=START - dt.timedelta(days=3))  # bought recently
    PurchaseFactory(customer=long_gone, occurred_at=START - dt.timedelta(days=90))  # lapsed before the journey
    # when the tick runs hourly for a day, then days later
    hours = [START + dt.timedelta(hours=h) for h in range(1, 25)]
    counts = tick_at(*hours, START + dt.timedelta(days=5), START + dt.timedelta(days=5, minutes=1))
    # then only the lapsing customer entered, once, in the tick after their 30th day
    assert entered(journey) == [lapsing.pk]
    assert counts[1] == 1
    assert sum(counts) == 1


def test_inactivity_enrols_again_after_a_new_purchase_lapses_too():
    journey = journey_of(Journey.Trigger.INACTIVITY, {"days": 30})
    customer = consented()
    PurchaseFactory(customer=customer, occurred_at=START - dt.timedelta(days=30) + dt.timedelta(minutes=30))
    assert tick_at(minutes(31), minutes(32)) == [1, 0]
    PurchaseFactory(customer=customer, occurred_at=minutes(40))
    later = minutes(40) + dt.timedelta(days=30)
    around = [later + dt.timedelta(minutes=n) for n in (-5, 1, 2)]
    assert tick_at(*around) == [0, 1, 0]
    assert Enrolment.objects.filter(journey=journey, customer=customer).count() == 2


def test_points_expiring_enrols_a_holder_once_when_the_points_come_within_n_days():
    # given a journey for points expiring within 14 days
    journey = journey_of(Journey.Trigger.POINTS_EXPIRING, {"days": 14})
    holder, spender = LoyaltyAccountFactory(), LoyaltyAccountFactory()
    expiry = START + dt.timedelta(days=14, hours=1)
    with at(minutes(-60)):
        for account, key in ((holder, "h"), (spender, "s")):
            ledger_append(
                account=account, kind=LedgerEntry.Kind.ADJUST, points=100, idempotency_key=key, expires_at=expiry
            )
        # the spender has used the points that would expire: nothing of theirs expires
        ledger_append(account=spender, kind=LedgerEntry.Kind.ADJUST, points=-100, idempotency_key="s-spent")
    # when the tick runs before, as and after the points come within 14 days
    counts = tick_at(minutes(30), minutes(61), minutes(62), minutes(70), minutes(24 * 60))
    # then the holder entered once
    assert entered(journey) == [holder.customer_id]
    assert counts == [0, 1, 0, 0, 0]


def test_tier_changed_enrols_changes_into_the_chosen_tiers_once():
    gold, silver = TierFactory(), TierFactory()
    journey = journey_of(Journey.Trigger.TIER_CHANGED, {"tier_ids": [gold.pk]})
    up, sideways = LoyaltyAccountFactory(), LoyaltyAccountFactory()
    for account, tier in ((up, gold), (sideways, silver)):
        TierChange.objects.create(
            account=account, to_tier=tier, reason=TierChange.Reason.UPGRADE, occurred_at=minutes(3)
        )
    counts = tick_at(minutes(4), minutes(5), minutes(13), minutes(60))
    assert entered(journey) == [up.customer_id]
    assert counts == [1, 0, 0, 0]


def test_coupon_unredeemed_after_n_days_enrols_once_per_unused_code_of_the_offer():
    # given a reminder 7 days after a code of one offer was issued and not redeemed
    offer, other_offer = OfferFactory(), OfferFactory()
    journey = journey_of(Journey.Trigger.COUPON_UNREDEEMED, {"days": 7, "offer_id": offer.pk})
    issued = START - dt.timedelta(days=7) + dt.timedelta(minutes=20)
    unused, redeemed, other = LoyaltyAccountFactory(), LoyaltyAccountFactory(), LoyaltyAccountFactory()
    CouponCodeFactory(offer=offer, account=unused, issued_at=issued)
    CouponCodeFactory(offer=offer, account=redeemed, issued_at=issued, uses=1)
    CouponCodeFactory(offer=other_offer, account=other, issued_at=issued)
    # when the tick runs around the seventh day
    counts = tick_at(minutes(10), minutes(21), minutes(22), minutes(30), minutes(24 * 60))
    # then only the unused code of the offer entered its holder, once
    assert entered(journey) == [unused.customer_id]
    assert counts == [0, 1, 0, 0, 0]
    assert CouponCode.objects.filter(uses=1).count() == 1


def test_segment_joined_enrols_who_joins_after_the_first_tick_not_the_members_then():
    # given a segment of people called "Vip" and one member before the journey's first tick
    segment = SegmentFactory(rules={"type": "profile", "field": "first_name", "op": "eq", "value": "Vip"})
    journey = journey_of(Journey.Trigger.SEGMENT_JOINED, {"segment": segment.pk})
    member = consented(first_name="Vip")
    joiner = consented(first_name="Plain")
    assert tick_at(minutes(1)) == [0]  # the members when the journey starts have not joined it
    # when another customer joins the segment, and the tick runs again several times
    joiner.first_name = "Vip"
    joiner.save(update_fields=["first_name"])
    counts = tick_at(minutes(2), minutes(3), minutes(20))
    # then only the joiner entered, once
    assert entered(journey) == [joiner.pk]
    assert counts == [1, 0, 0]
    # and leaving then joining again is a new entry (re-entry each time)
    joiner.first_name = "Plain"
    joiner.save(update_fields=["first_name"])
    tick_at(minutes(30))
    joiner.first_name = "Vip"
    joiner.save(update_fields=["first_name"])
    assert tick_at(minutes(40), minutes(41)) == [1, 0]
    assert member.pk not in entered(journey)
