"""The sweeper re-drives lost work, resolves lost workers' rows and finishes campaigns."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import deliveries_claim, deliveries_mark_handed, delivery_chunk_send
from campaigns.delivery.sweeper import deliveries_sweep
from campaigns.models import Campaign, Delivery, OutboxMessage
from campaigns.services.campaigns import campaign_transition
from tests.campaigns.delivery.conftest import sending_campaign

pytestmark = pytest.mark.django_db
S = Delivery.Status


def _launch_without_publishing(django_capture_on_commit_callbacks, **kwargs):
    """Launch and commit, but the process dies before the chunk tasks are published."""
    campaign = sending_campaign(**kwargs)
    with django_capture_on_commit_callbacks(execute=False):
        result = campaign_launch(campaign=campaign)
    return campaign, (result.ranges[0][0], result.ranges[-1][1])


def test_rows_whose_task_was_lost_are_republished_once_their_publish_lease_ends(
    audience, settings, django_capture_on_commit_callbacks, monkeypatch
):
    campaign, _ = _launch_without_publishing(django_capture_on_commit_callbacks)
    published = []
    monkeypatch.setattr(
        "campaigns.delivery.launch._publish", lambda cause_type, cause_id, ranges: published.extend(ranges)
    )
    settings.DELIVERY_REDRIVE_AFTER_SECONDS = 60
    redrive_after = timedelta(seconds=60)

    with django_capture_on_commit_callbacks(execute=True):
        early = deliveries_sweep(now=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        late = deliveries_sweep(now=timezone.now() + redrive_after + timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        again = deliveries_sweep(now=timezone.now() + redrive_after + timedelta(seconds=2))

    assert early.redriven == 0
    assert late.redriven == 3
    assert again.redriven == 0  # the re-drive moved the publish lease forward
    ids = sorted(Delivery.objects.filter(cause_id=campaign.pk).values_list("id", flat=True))
    assert published == [(ids[0], ids[-1])]


def test_a_republished_chunk_sends_what_the_lost_task_would_have(audience, django_capture_on_commit_callbacks):
    campaign, ids = _launch_without_publishing(django_capture_on_commit_callbacks)
    later = timezone.now() + timedelta(minutes=2)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deliveries_sweep(now=later)
    assert len(callbacks) == 1
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1], now=later)

    assert OutboxMessage.objects.count() == 3
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_rows_stuck_in_sending_after_the_provider_call_become_unknown_and_are_not_resent(
    audience, django_capture_on_commit_callbacks
):
    campaign, ids = _launch_without_publishing(django_capture_on_commit_callbacks)
    now = timezone.now()
    claimed = deliveries_claim(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1], now=now)
    deliveries_mark_handed(ids=[row.id for row in claimed], now=now)
    # ... and the worker dies here, perhaps after the provider accepted the messages.

    before_lease = deliveries_sweep(now=now + timedelta(minutes=1))
    after_lease = deliveries_sweep(now=now + timedelta(hours=1))

    assert len(claimed) == 3
    assert before_lease.lease_expired == 0
    assert (after_lease.lease_expired, after_lease.requeued) == (3, 0)
    assert set(Delivery.objects.values_list("status", "reason")) == {(S.UNKNOWN, "lease_expired")}
    resend = delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1])
    assert resend.claimed == 0
    assert not OutboxMessage.objects.exists()
    assert after_lease.finished == [campaign.pk]
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_rows_lost_between_claim_and_provider_call_are_sent_once_after_the_lease(
    audience, django_capture_on_commit_callbacks
):
    campaign, ids = _launch_without_publishing(django_capture_on_commit_callbacks)
    now = timezone.now()
    claimed = deliveries_claim(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1], now=now)
    # ... the worker dies before it handed anything to a provider.
    later = now + timedelta(hours=1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        swept = deliveries_sweep(now=later)
    chunk = {"cause_type": "campaign", "cause_id": campaign.pk, "first_id": ids[0], "last_id": ids[1], "now": later}
    first = delivery_chunk_send(**chunk)
    second = delivery_chunk_send(**chunk)

    assert len(claimed) == 3
    assert (swept.requeued, swept.lease_expired, swept.redriven) == (3, 0, 3)
    assert len(callbacks) == 1  # the re-drive publishes the chunk again
    assert (first.claimed, second.claimed) == (3, 0)
    assert OutboxMessage.objects.count() == 3
    assert set(Delivery.objects.values_list("status", "attempts")) == {(S.SENT, 2)}
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_queued_rows_of_a_cancelled_campaign_are_cancelled(audience, django_capture_on_commit_callbacks):
    campaign, _ = _launch_without_publishing(django_capture_on_commit_callbacks)
    campaign_transition(campaign=campaign, to=Campaign.Status.CANCELLED, actor=None)

    result = deliveries_sweep(now=timezone.now() + timedelta(hours=1))

    assert result.cancelled == 3
    assert result.redriven == 0
    assert set(Delivery.objects.values_list("status", "reason")) == {(S.CANCELLED, "cancelled")}


def test_a_paused_campaign_is_not_redriven_until_resumed(audience, django_capture_on_commit_callbacks):
    campaign, _ = _launch_without_publishing(django_capture_on_commit_callbacks)
    campaign_transition(campaign=campaign, to=Campaign.Status.PAUSED, actor=None)
    later = timezone.now() + timedelta(hours=1)

    paused = deliveries_sweep(now=later)
    campaign_transition(campaign=campaign, to=Campaign.Status.SENDING, actor=None)
    resumed = deliveries_sweep(now=later)

    assert paused.redriven == 0
    assert resumed.redriven == 3
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING


def test_outcomes_bounded_to_another_cause_change_nothing():
    from campaigns.delivery.sending import Outcome, deliveries_record
    from tests.campaigns.delivery.conftest import granted
    from tests.factories import CustomerFactory

    campaign = sending_campaign(channels="email")
    granted(CustomerFactory(), "email")
    result = campaign_launch(campaign=campaign)
    (first_id, last_id), now = result.ranges[0], timezone.now()
    claimed = deliveries_claim(cause_type="campaign", cause_id=campaign.pk, first_id=first_id, last_id=last_id, now=now)
    ids = [row.id for row in claimed]

    deliveries_mark_handed(ids=ids, now=now, cause_type="campaign", cause_id=campaign.pk + 1)
    assert not Delivery.objects.filter(pk__in=ids, handed_at__isnull=False).exists()
    sent = [Outcome(row.id, "sent", address="a@example.com") for row in claimed]
    assert deliveries_record(outcomes=sent, now=now, cause_type="campaign", cause_id=campaign.pk + 1) == 0

    deliveries_mark_handed(ids=ids, now=now, cause_type="campaign", cause_id=campaign.pk)
    assert Delivery.objects.filter(pk__in=ids, handed_at__isnull=False).count() == len(ids)
    assert deliveries_record(outcomes=sent, now=now, cause_type="campaign", cause_id=campaign.pk) == len(ids)
