"""Sending at the same wall time in every recipient's zone: launched once, each row released in its zone."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db.models import Max, Min
from django.urls import reverse

from campaigns.delivery.launch import campaign_launch, campaigns_dispatch_due
from campaigns.delivery.progress import campaign_progress
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.delivery.sweeper import deliveries_sweep
from campaigns.exceptions import CampaignError
from campaigns.models import Campaign, Delivery
from campaigns.services.campaigns import campaign_schedule
from customers.models import Customer
from tests.campaigns.delivery.conftest import granted
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory, SegmentFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db
Z = Customer.TimeZoneSource


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _draft() -> Campaign:
    campaign = CampaignFactory(channels="email", include=[SegmentFactory()])
    EmailVariantFactory(message=campaign.message)
    return campaign


@pytest.fixture
def people():
    """New York and Tokyo set explicitly, Los Angeles from the home store, a US phone with no zone, and
    someone of whom nothing is known (the retailer's only store is in Los Angeles)."""
    la_store = StoreFactory(code="la", time_zone="America/Los_Angeles", state="CA")
    return {
        "new_york": granted(CustomerFactory(time_zone="America/New_York", time_zone_source=Z.EXPLICIT), "email"),
        "tokyo": granted(CustomerFactory(time_zone="Asia/Tokyo", time_zone_source=Z.EXPLICIT), "email"),
        "los_angeles": granted(
            CustomerFactory(home_store=la_store, time_zone="America/Los_Angeles", time_zone_source=Z.STORE), "email"
        ),
        "us_phone": granted(CustomerFactory(phone="+12125550147", time_zone_source=Z.DEFAULT), "email"),
        "unknown": granted(CustomerFactory(time_zone_source=Z.DEFAULT), "email"),
    }


def _releases(campaign) -> dict[int, tuple[datetime, str]]:
    rows = Delivery.objects.filter(cause_id=campaign.pk).values_list("customer_id", "not_before", "reason")
    return {customer_id: (not_before, reason) for customer_id, not_before, reason in rows}


def _sent(campaign) -> set[int]:
    return set(Delivery.objects.filter(cause_id=campaign.pk, status="sent").values_list("customer_id", flat=True))


def _send_everything_due(campaign, now):
    """What the minutely beat does at ``now``: sweep (re-drive what is due), then run the chunk it published."""
    with time_machine.travel(now, tick=False):
        swept = deliveries_sweep(now=now)
        span = Delivery.objects.filter(cause_id=campaign.pk).aggregate(low=Min("id"), high=Max("id"))
        delivery_chunk_send(
            cause_type="campaign", cause_id=campaign.pk, first_id=span["low"], last_id=span["high"], now=now
        )
    return swept


def test_scheduling_a_local_time_launches_when_the_first_zone_reaches_it():
    campaign = _draft()
    with time_machine.travel(utc(2026, 12, 1, 12), tick=False):
        campaign_schedule(
            campaign=campaign, at=None, actor=None, timing=Campaign.Timing.LOCAL, local_at=datetime(2026, 12, 5, 10)
        )
    campaign.refresh_from_db()
    # 10:00 on 5 Dec comes first at UTC+14 (Kiribati's Line Islands): 20:00 UTC on 4 Dec.
    assert campaign.scheduled_at == utc(2026, 12, 4, 20)
    assert campaign.local_send_at == datetime(2026, 12, 5, 10)
    assert campaign.status == Campaign.Status.SCHEDULED


def test_a_local_time_already_reached_somewhere_is_refused_and_nothing_changes():
    campaign = _draft()
    with time_machine.travel(utc(2026, 12, 4, 21), tick=False), pytest.raises(CampaignError, match="already come"):
        campaign_schedule(
            campaign=campaign, at=None, actor=None, timing=Campaign.Timing.LOCAL, local_at=datetime(2026, 12, 5, 10)
        )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at, campaign.local_send_date) == ("draft", None, None)


def test_each_recipient_gets_it_at_ten_in_their_own_zone_and_nobody_early(people):
    campaign = _draft()
    with time_machine.travel(utc(2026, 12, 1, 12), tick=False):
        campaign_schedule(
            campaign=campaign, at=None, actor=None, timing=Campaign.Timing.LOCAL, local_at=datetime(2026, 12, 5, 10)
        )

    with time_machine.travel(utc(2026, 12, 4, 19, 59), tick=False):
        assert campaigns_dispatch_due() == []  # not before the first zone's 10:00
    with time_machine.travel(utc(2026, 12, 4, 20), tick=False):
        assert campaigns_dispatch_due() == [campaign.pk]

    pk = {name: customer.pk for name, customer in people.items()}
    expected = {
        pk["tokyo"]: utc(2026, 12, 5, 1),  # 10:00 JST (UTC+9)
        pk["new_york"]: utc(2026, 12, 5, 15),  # 10:00 EST (UTC-5)
        pk["los_angeles"]: utc(2026, 12, 5, 18),  # 10:00 PST (UTC-8), from the home store
        pk["unknown"]: utc(2026, 12, 5, 18),  # nothing known: the latest of the retailer's store zones
        pk["us_phone"]: utc(2026, 12, 5, 20),  # a US number, no zone: the westernmost US zone (Hawaii)
    }
    assert _releases(campaign) == {customer: (at, "local_time") for customer, at in expected.items()}

    # The beat every minute: each row goes in the minute its zone reaches 10:00, none a minute before.
    for instant in sorted(set(expected.values())):
        _send_everything_due(campaign, instant - timedelta(minutes=1))
        assert _sent(campaign) == {c for c, at in expected.items() if at < instant}
        swept = _send_everything_due(campaign, instant)
        assert swept.redriven == sum(at == instant for at in expected.values())
        assert _sent(campaign) == {c for c, at in expected.items() if at <= instant}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert set(Delivery.objects.filter(cause_id=campaign.pk).values_list("reason", flat=True)) == {""}


@pytest.mark.parametrize(
    ("wall", "new_york", "los_angeles"),
    [
        # US clocks go back at 02:00 on 1 Nov 2026: on that day 10:00 is standard time (UTC-5 / UTC-8),
        # an hour later in UTC than on the day before.
        (datetime(2026, 11, 1, 10), utc(2026, 11, 1, 15), utc(2026, 11, 1, 18)),
        (datetime(2026, 10, 31, 10), utc(2026, 10, 31, 14), utc(2026, 10, 31, 17)),
        # 01:30 happens twice that night: the first time (still daylight time) counts.
        (datetime(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8, 30)),
        # Clocks go forward at 02:00 on 14 Mar 2027: 10:00 is daylight time (UTC-4 / UTC-7) ...
        (datetime(2027, 3, 14, 10), utc(2027, 3, 14, 14), utc(2027, 3, 14, 17)),
        # ... and 02:30 does not exist: it goes at the first minute after the gap, 03:00 local.
        (datetime(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7), utc(2027, 3, 14, 10)),
    ],
)
def test_the_utc_instant_is_right_across_a_dst_change(people, wall, new_york, los_angeles):
    campaign = _draft()
    with time_machine.travel(utc(2026, 10, 1), tick=False):
        campaign_schedule(campaign=campaign, at=None, actor=None, timing=Campaign.Timing.LOCAL, local_at=wall)
    campaign.refresh_from_db()
    with time_machine.travel(campaign.scheduled_at, tick=False):
        campaign_launch(campaign=campaign)

    releases = _releases(campaign)
    assert releases[people["new_york"].pk][0] == new_york
    assert releases[people["los_angeles"].pk][0] == los_angeles


def test_launch_publishes_no_chunk_for_rows_not_yet_due_and_progress_shows_them_waiting(people):
    campaign = _draft()
    with time_machine.travel(utc(2026, 12, 1), tick=False):
        campaign_schedule(
            campaign=campaign, at=None, actor=None, timing=Campaign.Timing.LOCAL, local_at=datetime(2026, 12, 5, 10)
        )
    with time_machine.travel(utc(2026, 12, 5, 12), tick=False):  # Tokyo's 10:00 has passed; the Americas wait
        result = campaign_launch(campaign=campaign)
        progress = campaign_progress(campaign=campaign)

    assert result.created == 5
    assert len(result.ranges) == 1  # Tokyo's row is due: one chunk for it
    assert progress.waiting_local_time == 4
    assert progress.statuses["deferred"] == 4
    tokyo = Delivery.objects.get(cause_id=campaign.pk, customer=people["tokyo"])
    assert tokyo.reason == ""  # due at launch: nothing to wait for


def test_a_campaign_at_a_time_is_unchanged(people):
    campaign = _draft()
    with time_machine.travel(utc(2026, 12, 1), tick=False):
        campaign_schedule(campaign=campaign, at=utc(2026, 12, 5, 10), actor=None)
    campaign.refresh_from_db()
    assert (campaign.timing, campaign.scheduled_at, campaign.local_send_at) == ("at", utc(2026, 12, 5, 10), None)

    with time_machine.travel(utc(2026, 12, 5, 10), tick=False):
        result = campaign_launch(campaign=campaign)

    assert set(_releases(campaign).values()) == {(None, "")}
    assert result.ranges


def test_send_now_is_due_at_once():
    campaign = _draft()
    with time_machine.travel(utc(2026, 12, 1, 9), tick=False):
        campaign_schedule(campaign=campaign, at=None, actor=None, timing=Campaign.Timing.NOW)
        assert campaigns_dispatch_due() == [campaign.pk]


def test_local_launch_costs_the_same_queries_whatever_the_audience(people, django_assert_max_num_queries):
    def launch_with(extra: int) -> None:
        for index in range(extra):
            granted(
                CustomerFactory(phone=f"+1415555{index:04d}", time_zone_source=Z.DEFAULT, home_store=None), "email"
            )
        campaign = _draft()
        with time_machine.travel(utc(2026, 12, 1), tick=False):
            campaign_schedule(
                campaign=campaign, at=None, actor=None, timing=Campaign.Timing.LOCAL, local_at=datetime(2026, 12, 5, 10)
            )
        with time_machine.travel(utc(2026, 12, 4, 20), tick=False), django_assert_max_num_queries(20):
            campaign_launch(campaign=campaign)

    launch_with(0)
    launch_with(40)


def test_the_admin_schedules_a_local_time_and_shows_it(client):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    campaign = _draft()
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "At a local time in each recipient&#x27;s zone" in page

    with time_machine.travel(utc(2026, 12, 1), tick=True):
        client.post(
            reverse("admin:campaigns_campaign_status", args=[campaign.pk]),
            {"to": "scheduled", "timing": "local", "local_at": "2026-12-05T10:00"},
        )
        campaign.refresh_from_db()
        page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()

    assert (campaign.status, campaign.local_send_at) == ("scheduled", datetime(2026, 12, 5, 10))
    assert "2026-12-05 10:00 in each recipient" in page
