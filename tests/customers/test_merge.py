"""Merging two profiles keeps all history and the most restrictive consent."""

import pytest

from customers.exceptions import MergeError
from customers.models import (
    ConsentConfirmation,
    ConsentEvidence,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    MergeProposal,
    Purchase,
)
from customers.selectors import consent_states_for, customer_is_reachable, customer_timeline
from customers.services import consent_grant, consent_state_rebuild, consent_withdraw, customer_merge
from customers.services.consent import Evidence, confirmation_token_make, consent_confirm
from tests.factories import CustomerFactory, MarketingUserFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def put_in_state(customer, status, *, store, clerk, disclosure):
    """Move the customer's email consent to ``status`` through the services."""
    if status == "none":
        return
    method = ConsentMethod.CHECKOUT if status == "pending" else ConsentMethod.IMPORT
    consent_grant(
        customer=customer,
        channel="email",
        evidence=Evidence(method=method, store=store, collected_by=clerk, disclosure=disclosure, basis="Paper form"),
    )
    if status == "withdrawn":
        consent_withdraw(customer=customer, channel="email", evidence=Evidence(method=ConsentMethod.ONE_CLICK))
    assert consent_states_for(customer)["email"] == status


@pytest.mark.parametrize(
    ("survivor_status", "other_status", "expected"),
    [
        ("granted", "withdrawn", "withdrawn"),
        ("withdrawn", "granted", "withdrawn"),
        ("pending", "granted", "pending"),
        ("granted", "pending", "pending"),
        ("none", "granted", "granted"),
        ("granted", "none", "granted"),
        ("none", "withdrawn", "withdrawn"),
        ("none", "none", "none"),
    ],
)
def test_merge_keeps_the_most_restrictive_consent(survivor_status, other_status, expected, store, clerk, disclosures):
    survivor, other = CustomerFactory(), CustomerFactory()
    put_in_state(survivor, survivor_status, store=store, clerk=clerk, disclosure=disclosures["email"])
    put_in_state(other, other_status, store=store, clerk=clerk, disclosure=disclosures["email"])

    customer_merge(survivor=survivor, other=other, user=MarketingUserFactory())

    assert consent_states_for(survivor)["email"] == expected
    assert customer_is_reachable(customer=survivor, channel="email") == (expected == "granted")
    # The stored state is still exactly what the ledger says.
    if expected != "none":
        before = ConsentState.objects.get(customer=survivor, channel="email").status
        assert consent_state_rebuild(customer=survivor)["email"].status == before


def test_a_pending_survivor_can_still_confirm_after_merge(store, clerk, disclosures):
    survivor, other = CustomerFactory(), CustomerFactory()
    put_in_state(survivor, "granted", store=store, clerk=clerk, disclosure=disclosures["email"])
    put_in_state(other, "pending", store=store, clerk=clerk, disclosure=disclosures["email"])

    customer_merge(survivor=survivor, other=other, user=MarketingUserFactory())

    confirmation = ConsentConfirmation.objects.get(customer=survivor)
    assert confirmation.grant.method == ConsentMethod.MERGE
    consent_confirm(token=confirmation_token_make(confirmation))
    assert consent_states_for(survivor)["email"] == ConsentStatus.GRANTED


def test_merge_moves_purchases_fills_gaps_and_keeps_history(store, clerk, disclosures):
    survivor = CustomerFactory(first_name="", phone=None)
    other = CustomerFactory(first_name="Ana", phone="+12125550111")
    PurchaseFactory(customer=survivor)
    PurchaseFactory.create_batch(2, customer=other)
    consent_grant(
        customer=other,
        channel="sms",
        evidence=Evidence(
            method=ConsentMethod.CHECKOUT, store=store, collected_by=clerk, disclosure=disclosures["sms"]
        ),
    )
    proposal = MergeProposal.objects.create(customer=survivor, other=other, reason="test")
    user = MarketingUserFactory()

    customer_merge(survivor=survivor, other=other, user=user)

    survivor.refresh_from_db()
    other.refresh_from_db()
    assert Purchase.objects.filter(customer=survivor).count() == 3
    assert not Purchase.objects.filter(customer=other).exists()
    assert other.merged_into == survivor
    assert (survivor.phone, survivor.first_name) == ("+12125550111", "Ana")
    assert other.phone is None
    assert consent_states_for(survivor)["sms"] == ConsentStatus.GRANTED
    # The other profile's ledger stays where it was written and shows in the survivor's timeline.
    assert ConsentEvidence.objects.filter(customer=other, channel="sms", action="grant").exists()
    titles = [entry.title for entry in customer_timeline(survivor)]
    assert titles.count("SMS consent granted") == 2
    proposal.refresh_from_db()
    assert proposal.status == MergeProposal.Status.MERGED


def test_merge_refuses_itself_and_already_merged_profiles():
    user = MarketingUserFactory()
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    with pytest.raises(MergeError):
        customer_merge(survivor=a, other=a, user=user)
    customer_merge(survivor=a, other=b, user=user)
    with pytest.raises(MergeError):
        customer_merge(survivor=c, other=b, user=user)


def test_merge_keeps_the_persons_own_limits_on_the_survivor():
    from datetime import timedelta

    from django.utils import timezone

    from customers.models import CategoryOptOut

    later = timezone.now() + timedelta(days=20)
    survivor = CustomerFactory(max_messages_per_week=3, messages_paused_until=timezone.now() + timedelta(days=2))
    other = CustomerFactory(max_messages_per_week=1, messages_paused_until=later)
    CategoryOptOut.objects.create(customer=other, category="promotional")
    CategoryOptOut.objects.create(customer=survivor, category="event")
    CategoryOptOut.objects.create(customer=other, category="event")

    customer_merge(survivor=survivor, other=other, user=MarketingUserFactory())

    survivor.refresh_from_db()
    assert survivor.max_messages_per_week == 1
    assert survivor.messages_paused_until == later
    assert set(CategoryOptOut.objects.filter(customer=survivor).values_list("category", flat=True)) == {
        "promotional",
        "event",
    }


def test_survey_answers_move_to_the_survivor_and_one_survey_answered_twice_keeps_the_later_answer():
    from datetime import timedelta

    from django.utils import timezone

    from customers.models import SurveyResponse

    survivor, other = CustomerFactory(), CustomerFactory()
    early, late = timezone.now() - timedelta(days=3), timezone.now() - timedelta(days=1)

    def answer(customer, source, score, when, comment=""):
        return SurveyResponse.objects.create(
            customer=customer, source=source, score=score, comment=comment, answered_at=when, first_answered_at=when
        )

    answer(survivor, "campaign:1", 3, early)
    answer(other, "campaign:1", 9, late, "Much better now")
    answer(survivor, "campaign:2", 8, late)
    answer(other, "campaign:2", 2, early)
    answer(other, "campaign:3", 10, early)

    customer_merge(survivor=survivor, other=other, user=MarketingUserFactory())

    kept = {r.source: r for r in SurveyResponse.objects.all()}
    assert set(kept) == {"campaign:1", "campaign:2", "campaign:3"}
    assert SurveyResponse.objects.count() == 3
    assert {r.customer_id for r in kept.values()} == {survivor.pk}
    assert (kept["campaign:1"].score, kept["campaign:1"].comment) == (9, "Much better now")
    assert kept["campaign:1"].first_answered_at == early  # the edit window still runs from the first answer
    assert kept["campaign:2"].score == 8
    assert kept["campaign:3"].score == 10
