"""Pause, resume and cancel while a campaign sends: every chunk not yet claimed honours the move."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import deliveries_claim, delivery_chunk_send
from campaigns.delivery.sweeper import deliveries_sweep
from campaigns.models import Campaign, Delivery, OutboxMessage
from campaigns.services.campaigns import campaign_status_change
from tests.campaigns.delivery.conftest import sending_campaign
from tests.factories import MarketingUserFactory

pytestmark = pytest.mark.django_db
S = Delivery.Status


@pytest.fixture
def launched(audience, settings, django_capture_on_commit_callbacks):
    """A campaign launched in chunks of one delivery each (three chunks), tasks not yet run."""
    settings.DELIVERY_CHUNK_SIZE = 1
    campaign = sending_campaign()
    with django_capture_on_commit_callbacks(execute=False):
        result = campaign_launch(campaign=campaign)
    assert len(result.ranges) == 3
    return campaign, result.ranges


def _send(campaign, first_last, now=None):
    return delivery_chunk_send(
        cause_type="campaign", cause_id=campaign.pk, first_id=first_last[0], last_id=first_last[1], now=now
    )


def test_pause_mid_campaign_stops_later_chunks_and_resume_lets_the_sweeper_finish_it(
    launched, django_capture_on_commit_callbacks
):
    campaign, ranges = launched
    staff = MarketingUserFactory()
    first = _send(campaign, ranges[0])

    campaign_status_change(campaign=campaign, to=Campaign.Status.PAUSED, actor=staff)
    paused = [_send(campaign, chunk) for chunk in ranges[1:]]

    assert first.claimed == 1
    assert [result.claimed for result in paused] == [0, 0]
    assert OutboxMessage.objects.count() == 1
    assert Delivery.objects.filter(status=S.QUEUED).count() == 2
    # Paused rows are not re-driven either, however late it gets.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        idle = deliveries_sweep(now=timezone.now() + timedelta(hours=1))
    assert (idle.redriven, len(callbacks), idle.finished) == (0, 0, [])

    campaign_status_change(campaign=campaign, to=Campaign.Status.SENDING, actor=staff)
    later = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        redrive = deliveries_sweep(now=later)
    assert redrive.redriven == 2
    assert len(callbacks) == 1  # the re-driven rows' chunk tasks are published after commit
    for chunk in ranges[1:]:
        _send(campaign, chunk, now=later)

    assert OutboxMessage.objects.count() == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {S.SENT}
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def test_cancel_mid_campaign_cancels_queued_rows_with_a_reason_and_sends_nothing_more(launched):
    campaign, ranges = launched
    _send(campaign, ranges[0])

    campaign_status_change(campaign=campaign, to=Campaign.Status.CANCELLED, actor=MarketingUserFactory())
    after = [_send(campaign, chunk) for chunk in ranges[1:]]

    assert [result.claimed for result in after] == [0, 0]
    assert OutboxMessage.objects.count() == 1
    statuses = sorted(Delivery.objects.values_list("status", "reason"))
    assert statuses == [(S.CANCELLED, "cancelled"), (S.CANCELLED, "cancelled"), (S.SENT, "")]
    assert deliveries_sweep(now=timezone.now() + timedelta(hours=1)).cancelled == 0  # nothing left for it
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.CANCELLED


def test_a_row_already_claimed_when_the_campaign_is_cancelled_finishes_its_send(launched):
    campaign, ranges = launched
    claimed = deliveries_claim(
        cause_type="campaign", cause_id=campaign.pk, first_id=ranges[0][0], last_id=ranges[0][1], now=timezone.now()
    )
    campaign_status_change(campaign=campaign, to=Campaign.Status.CANCELLED, actor=MarketingUserFactory())

    assert len(claimed) == 1
    assert Delivery.objects.get(pk=claimed[0].id).status == S.SENDING
    assert Delivery.objects.filter(status=S.CANCELLED).count() == 2
