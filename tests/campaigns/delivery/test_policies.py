"""The chunk applies quiet hours and frequency caps, with the rules the migrations seed."""

from datetime import UTC, datetime

import pytest
import time_machine

from campaigns.channels import registry
from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.exceptions import PermanentChannelError
from campaigns.models import Campaign, Delivery, OutboxMessage
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.send_policies]
S, R = Delivery.Status, Delivery.Reason

# 23:30 in New York (EDT), 20:30 in San Francisco (PDT): SMS quiet hours in the east only.
LATE_IN_NEW_YORK = datetime(2026, 7, 15, 3, 30, tzinfo=UTC)
# 16:00 in New York, 13:00 in San Francisco: every US zone may be texted.
AFTERNOON = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)


def _launch_and_send(campaign, *, now):
    ranges = campaign_launch(campaign=campaign).ranges
    for first_id, last_id in ranges:
        delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=first_id, last_id=last_id, now=now)


def _row(campaign, customer, channel):
    return Delivery.objects.get(cause_id=campaign.pk, customer_id=customer.pk, channel=channel)


def test_an_sms_in_the_recipients_quiet_hours_waits_for_eight_local_and_email_goes_now():
    with time_machine.travel(LATE_IN_NEW_YORK, tick=False):
        new_yorker = granted(CustomerFactory(phone="+12125550101"), "email", "sms")
        californian = granted(CustomerFactory(phone="+14155550101"), "sms")
        campaign = sending_campaign()

        _launch_and_send(campaign, now=LATE_IN_NEW_YORK)

    held = _row(campaign, new_yorker, "sms")
    assert (held.status, held.reason) == (S.QUEUED, R.QUIET_HOURS)
    assert held.not_before == datetime(2026, 7, 15, 12, 0, tzinfo=UTC)  # 08:00 EDT
    assert held.attempts == 0  # waiting for the morning costs no attempt
    assert _row(campaign, new_yorker, "email").status == S.SENT
    assert _row(campaign, californian, "sms").status == S.SENT
    assert not OutboxMessage.objects.filter(channel="sms", to=new_yorker.phone).exists()

    with time_machine.travel(held.not_before, tick=False):
        delivery_chunk_send(
            cause_type="campaign", cause_id=campaign.pk, first_id=held.pk, last_id=held.pk, now=held.not_before
        )
    assert _row(campaign, new_yorker, "sms").status == S.SENT


def test_a_second_promotional_text_the_same_day_is_skipped_by_the_daily_sms_cap():
    with time_machine.travel(AFTERNOON, tick=False):
        customer = granted(CustomerFactory(phone="+14155550101"), "sms")
        first = sending_campaign(channels="sms")
        second = sending_campaign(channels="sms")

        _launch_and_send(first, now=AFTERNOON)
        _launch_and_send(second, now=AFTERNOON)

    assert _row(first, customer, "sms").status == S.SENT
    capped = _row(second, customer, "sms")
    assert (capped.status, capped.reason) == (S.SKIPPED, R.FREQUENCY_CAP)
    assert OutboxMessage.objects.filter(channel="sms").count() == 1


def test_a_capped_loyalty_text_is_deferred_to_the_next_local_day():
    with time_machine.travel(AFTERNOON, tick=False):
        customer = granted(CustomerFactory(phone="+14155550101"), "sms")
        first = sending_campaign(channels="sms")
        loyalty = sending_campaign(channels="sms", category=Campaign.Category.LOYALTY)

        _launch_and_send(first, now=AFTERNOON)
        _launch_and_send(loyalty, now=AFTERNOON)

    deferred = _row(loyalty, customer, "sms")
    assert (deferred.status, deferred.reason) == (S.QUEUED, R.FREQUENCY_CAP)
    assert deferred.not_before == datetime(2026, 7, 16, 7, 0, tzinfo=UTC)  # midnight in San Francisco


def test_a_text_the_provider_refused_gives_its_cap_slot_back(settings, monkeypatch):
    class Refusing:
        channel = "sms"

        def build_payload(self, *, rendered, to, metadata, links):
            return metadata

        def send_many(self, payloads):
            return [PermanentChannelError("unreachable handset") for _ in payloads]

    settings.DELIVERY_OUTBOX_CHANNELS = []
    registry.channel_get("sms")  # register the defaults first
    monkeypatch.setitem(registry._factories, "sms", Refusing)
    with time_machine.travel(AFTERNOON, tick=False):
        customer = granted(CustomerFactory(phone="+14155550101"), "sms")
        refused = sending_campaign(channels="sms")
        _launch_and_send(refused, now=AFTERNOON)
        settings.DELIVERY_OUTBOX_CHANNELS = ["sms"]
        later = sending_campaign(channels="sms")
        _launch_and_send(later, now=AFTERNOON)

    assert _row(refused, customer, "sms").status == S.FAILED
    assert _row(later, customer, "sms").status == S.SENT


def test_transactional_messages_ignore_quiet_hours_and_caps():
    with time_machine.travel(LATE_IN_NEW_YORK, tick=False):
        customer = granted(CustomerFactory(phone="+12125550101"), "sms")
        receipts = [sending_campaign(channels="sms", category=Campaign.Category.TRANSACTIONAL) for _ in range(2)]
        for campaign in receipts:
            _launch_and_send(campaign, now=LATE_IN_NEW_YORK)

    assert [_row(campaign, customer, "sms").status for campaign in receipts] == [S.SENT, S.SENT]
