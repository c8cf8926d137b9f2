"""Progress counts in one query, and "why was this person not sent this" in plain words for each reason."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.progress import (
    REASON_TEXT,
    campaign_progress,
    campaign_why,
    campaigns_progress,
    customers_matching,
    delivery_timeline_entries,
    progress_bar,
)
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Campaign, Delivery
from customers.models import Customer
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.factories import CustomerFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory, SegmentFactory

pytestmark = pytest.mark.django_db
S = Delivery.Status
R = Delivery.Reason


@pytest.fixture
def launched(audience, django_capture_on_commit_callbacks):
    campaign = sending_campaign()
    with django_capture_on_commit_callbacks(execute=False):
        result = campaign_launch(campaign=campaign)
    return campaign, result.ranges


def _rows(campaign):
    return Delivery.objects.filter(cause_type="campaign", cause_id=campaign.pk)


def test_progress_counts_every_status_reasons_and_the_last_minute_in_one_query(
    launched, django_assert_num_queries
):
    campaign, _ = launched
    now = timezone.now()
    for index in range(4):  # seven rows in all: add four more customers' rows by hand
        customer = CustomerFactory()
        Delivery.objects.create(
            cause_type="campaign", cause_id=campaign.pk, customer=customer, channel="email",
            message_id=campaign.message_id, created_at=now, updated_at=now,
            status=[S.SENT, S.SKIPPED, S.FAILED, S.QUEUED][index],
            reason=["", R.FREQUENCY_CAP, R.PROVIDER_REFUSED, R.QUIET_HOURS][index],
            sent_at=now - timedelta(minutes=5) if index == 0 else None,
            not_before=now + timedelta(hours=8) if index == 3 else None,
        )
    first, second, third = _rows(campaign).order_by("id")[:3]
    _rows(campaign).filter(pk=first.pk).update(status=S.SENT, sent_at=now - timedelta(seconds=10))
    _rows(campaign).filter(pk=second.pk).update(status=S.SENDING)

    with django_assert_num_queries(1):
        progress = campaign_progress(campaign=campaign, now=now)

    assert progress.total == 7
    assert {k: v for k, v in progress.statuses.items() if v} == {
        "queued": 1, "sending": 1, "sent": 2, "deferred": 1, "skipped": 1, "failed": 1
    }
    assert third.status == S.QUEUED
    assert progress.sent_last_minute == 1  # the other send was five minutes ago
    assert progress.skipped_by_reason == [("frequency_cap", "Frequency cap", 1)]
    assert progress.failed_by_reason == [("provider_refused", "Refused by the provider", 1)]
    assert (progress.done, progress.percent) == (4, 57)
    assert progress_bar(progress, width=10) == "[#####.....]  57% 4/7"


def test_the_campaign_list_counts_a_page_of_campaigns_in_one_query(launched, django_assert_num_queries):
    campaign, ranges = launched
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ranges[0][0], last_id=ranges[-1][1])
    other = CampaignFactory()

    with django_assert_num_queries(1):
        counts = campaigns_progress(campaign_ids=[campaign.pk, other.pk])

    assert counts[campaign.pk].statuses["sent"] == 3
    assert counts[campaign.pk].percent == 100
    assert other.pk not in counts


def test_people_are_found_by_email_phone_in_any_spelling_or_name_never_by_id(audience):
    both = audience["both"]

    assert customers_matching(query=both.email.upper()) == [both]
    assert customers_matching(query="(415) 555-0101") == [both]
    assert customers_matching(query=f"bob {both.last_name}") == [both]
    assert customers_matching(query=str(both.pk)) == []
    assert customers_matching(query="   ") == []


def test_why_a_delivered_person_got_it_and_a_skipped_one_did_not(launched):
    campaign, ranges = launched
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ranges[0][0], last_id=ranges[-1][1])
    ann = Customer.objects.get(first_name="Ann")
    _rows(campaign).filter(customer_id=ann.pk).update(status=S.SKIPPED, reason=R.FREQUENCY_CAP, sent_at=None)
    bob = Customer.objects.get(first_name="Bob")

    ann_answer = campaign_why(campaign=campaign, customer=ann)
    bob_answer = campaign_why(campaign=campaign, customer=bob)

    assert [(row.channel, row.status, row.explanation) for row in ann_answer.deliveries] == [
        ("email", S.SKIPPED, REASON_TEXT[R.FREQUENCY_CAP])
    ]
    assert [(row.channel, row.status, row.address) for row in bob_answer.deliveries] == [
        ("email", S.SENT, bob.email), ("sms", S.SENT, bob.phone)
    ]
    assert all(row.attempts == 1 and row.sent_at for row in bob_answer.deliveries)
    assert ann_answer.not_in_audience == bob_answer.not_in_audience == []


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("none", ["email: They have not consented", "sms: They have not consented"]),
        ("suppressed", ["email: Their address is on the suppression list", "sms: They have not consented"]),
    ],
)
def test_why_someone_left_out_by_a_check_has_no_delivery(audience, launched, who, expected):
    campaign, _ = launched

    answer = campaign_why(campaign=campaign, customer=audience[who])

    assert answer.deliveries == []
    assert [line[: len(prefix)] for line, prefix in zip(answer.not_in_audience, expected, strict=True)] == expected


def test_why_someone_without_a_phone_got_no_sms(launched):
    campaign, _ = launched
    ann = Customer.objects.get(first_name="Ann")
    granted(ann, "sms")

    answer = campaign_why(campaign=campaign, customer=ann)

    assert answer.deliveries[0].channel == "email"  # the email row answers; and for SMS:
    assert campaign_why(campaign=_sms_only(campaign), customer=ann).not_in_audience == [
        "sms: " + REASON_TEXT[R.MISSING_ADDRESS]
    ]


def _sms_only(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(channels=["sms"])
    campaign.refresh_from_db()
    Delivery.objects.filter(cause_id=campaign.pk).delete()
    return campaign


def test_why_someone_outside_the_segment_or_in_an_excluded_one_was_left_out(audience):
    outside = CampaignFactory(include=[SegmentFactory(name="Store sign-ups", rules=_source("store"))])
    excluded = CampaignFactory(
        include=[SegmentFactory()], exclude=[SegmentFactory(name="Web sign-ups", rules=_source("web"))]
    )
    ann = audience["email_only"]

    assert campaign_why(campaign=outside, customer=ann).not_in_audience[-1] == (
        "They are not in the campaign's segment (Store sign-ups)."
    )
    assert campaign_why(campaign=excluded, customer=ann).not_in_audience[-1] == (
        "They are in an excluded segment (Web sign-ups)."
    )


def _source(value):
    return {"match": "all", "rules": [{"type": "source", "op": "in", "values": [value]}]}


def test_why_before_launch_says_so_and_after_launch_names_a_late_joiner(audience, django_capture_on_commit_callbacks):
    draft = CampaignFactory(include=[SegmentFactory()])
    EmailVariantFactory(message=draft.message)
    ann = audience["email_only"]
    campaign = sending_campaign(channels="email")
    with django_capture_on_commit_callbacks(execute=False):
        campaign_launch(campaign=campaign)
    late = granted(CustomerFactory(first_name="Eve"), "email")

    before = campaign_why(campaign=draft, customer=ann).not_in_audience
    after = campaign_why(campaign=campaign, customer=late).not_in_audience

    assert before[0].startswith("The campaign has not started sending")
    assert before[1] == "They would be sent it on email."
    assert after[0].startswith("They qualify now on email, but did not when the campaign launched")


def test_why_a_merged_or_erased_profile_has_none(launched):
    campaign, _ = launched
    survivor = CustomerFactory()
    merged = CustomerFactory(merged_into=survivor, email=None, email_hmac="")
    erased = CustomerFactory(erased_at=timezone.now(), email=None, email_hmac="")

    assert campaign_why(campaign=campaign, customer=merged).not_in_audience == [
        f"This profile was merged into customer #{survivor.pk}; look that profile up instead."
    ]
    assert campaign_why(campaign=campaign, customer=erased).not_in_audience == ["Their profile was erased."]


def test_a_customers_deliveries_appear_on_their_timeline(launched):
    campaign, ranges = launched
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ranges[0][0], last_id=ranges[-1][1])
    bob = Customer.objects.get(first_name="Bob")

    entries = delivery_timeline_entries([bob.pk])

    assert sorted(entry.title for entry in entries) == [
        f"Email from campaign “{campaign.name}”: sent",
        f"SMS from campaign “{campaign.name}”: sent",
    ]
    assert {entry.details["Address"] for entry in entries} == {bob.email, bob.phone}


def test_why_for_a_survivor_includes_the_deliveries_of_profiles_merged_into_it(launched):
    campaign, _ = launched
    ann = Customer.objects.get(first_name="Ann")
    survivor = CustomerFactory()
    Customer.objects.filter(pk=ann.pk).update(merged_into=survivor)

    answer = campaign_why(campaign=campaign, customer=survivor)

    assert [(row.channel, row.status) for row in answer.deliveries] == [("email", S.QUEUED)]
    assert answer.deliveries[0].explanation == "Waiting to be sent."
