"""Launching writes the deliveries of the whole audience in one statement, once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.audience import campaign_forecast
from campaigns.delivery.launch import campaign_launch, campaigns_dispatch_due, deliveries_insert_for_campaign
from campaigns.models import Campaign, Delivery
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.factories import CustomerFactory
from tests.factories.campaigns import EmailVariantFactory, PersonaFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def _rows(campaign):
    return set(
        Delivery.objects.filter(cause_type="campaign", cause_id=campaign.pk).values_list("customer_id", "channel")
    )


def test_launch_writes_one_queued_delivery_per_consented_customer_and_channel(audience):
    campaign = sending_campaign()

    result = campaign_launch(campaign=campaign)

    both, email_only = audience["both"].pk, audience["email_only"].pk
    assert _rows(campaign) == {(email_only, "email"), (both, "email"), (both, "sms")}
    assert result.created == 3
    assert result.created == campaign_forecast(campaign).messages_total
    row = Delivery.objects.get(cause_id=campaign.pk, customer_id=both, channel="sms")
    assert (row.status, row.attempts, row.message_id) == ("queued", 0, campaign.message_id)
    assert row.variant_id == campaign.message.variants.get(channel="sms").pk
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    assert campaign.started_at is not None


def test_launching_twice_adds_nothing(audience):
    campaign = sending_campaign()
    campaign_launch(campaign=campaign)

    again = deliveries_insert_for_campaign(campaign=campaign, now=timezone.now())
    relaunch = campaign_launch(campaign=campaign)

    assert again == 0
    assert relaunch.created == 0
    assert Delivery.objects.filter(cause_id=campaign.pk).count() == 3


def test_a_relaunch_writes_only_the_rows_still_missing_and_leaves_the_others_untouched(audience):
    campaign = sending_campaign()
    campaign_launch(campaign=campaign)
    Delivery.objects.filter(cause_id=campaign.pk, channel="email").update(status="sent")
    granted(audience["none"], "email", "sms")  # consented since the first launch
    other = sending_campaign()  # same customers, another cause: its rows never count as this one's
    campaign_launch(campaign=other)

    relaunch = campaign_launch(campaign=campaign)

    newcomer = audience["none"].pk
    assert relaunch.created == 2
    assert {(newcomer, "email"), (newcomer, "sms")} <= _rows(campaign)
    assert len(_rows(campaign)) == 5
    assert Delivery.objects.filter(cause_id=campaign.pk, channel="email", status="sent").count() == 2


def test_rows_are_written_in_customer_then_channel_order(audience):
    campaign = sending_campaign()
    campaign_launch(campaign=campaign)

    written = list(
        Delivery.objects.filter(cause_id=campaign.pk).order_by("id").values_list("customer_id", "channel")
    )
    assert written == sorted(written)


def test_preferred_mode_takes_the_first_consented_channel_in_campaign_order(audience):
    campaign = sending_campaign(channels="sms,email", mode=Campaign.Mode.PREFERRED)

    campaign_launch(campaign=campaign)

    assert _rows(campaign) == {(audience["both"].pk, "sms"), (audience["email_only"].pk, "email")}


def test_excluded_segment_members_get_nothing(audience):
    campaign = sending_campaign(channels="email")
    bobs = SegmentFactory(rules={"type": "profile", "field": "first_name", "op": "eq", "value": "Bob"})
    campaign.exclude_segments.set([bobs])

    campaign_launch(campaign=campaign)

    assert _rows(campaign) == {(audience["email_only"].pk, "email")}


def test_merged_and_erased_profiles_are_not_launched():
    kept = granted(CustomerFactory(), "email")
    granted(CustomerFactory(merged_into=kept), "email")
    granted(CustomerFactory(erased_at=timezone.now()), "email")
    campaign = sending_campaign(channels="email")

    campaign_launch(campaign=campaign)

    assert _rows(campaign) == {(kept.pk, "email")}


def test_persona_members_get_the_persona_variant():
    vip = granted(CustomerFactory(first_name="Vera"), "email")
    other = granted(CustomerFactory(first_name="Olga"), "email")
    campaign = sending_campaign(channels="email")
    persona = PersonaFactory(rules={"type": "profile", "field": "first_name", "op": "eq", "value": "Vera"})
    persona_variant = EmailVariantFactory(message=campaign.message, persona=persona, subject="Yours, {{ first_name }}")
    default = campaign.message.variants.get(channel="email", persona__isnull=True)

    campaign_launch(campaign=campaign)

    chosen = dict(Delivery.objects.filter(cause_id=campaign.pk).values_list("customer_id", "variant_id"))
    assert chosen == {vip.pk: persona_variant.pk, other.pk: default.pk}


def test_a_shared_coupon_code_is_recorded_on_each_delivery(audience):
    from tests.factories.loyalty import CouponCodeFactory

    code = CouponCodeFactory()
    campaign = sending_campaign(channels="email")
    Campaign.objects.filter(pk=campaign.pk).update(offer=code.offer, shared_code=code, coupon_mode="shared")
    campaign.refresh_from_db()

    campaign_launch(campaign=campaign)

    assert set(Delivery.objects.filter(cause_id=campaign.pk).values_list("coupon_code_id", flat=True)) == {code.pk}


def test_a_campaign_reaching_nobody_is_sent_at_once():
    CustomerFactory()  # no consent
    campaign = sending_campaign()

    result = campaign_launch(campaign=campaign)

    campaign.refresh_from_db()
    assert result.ranges == []
    assert campaign.status == Campaign.Status.SENT


def test_launch_publishes_chunk_tasks_by_id_range_after_commit(audience, settings, django_capture_on_commit_callbacks):
    settings.DELIVERY_CHUNK_SIZE = 2
    campaign = sending_campaign()

    with django_capture_on_commit_callbacks() as callbacks:
        result = campaign_launch(campaign=campaign)

    ids = sorted(Delivery.objects.filter(cause_id=campaign.pk).values_list("id", flat=True))
    assert len(callbacks) == 1
    assert result.ranges[0][0] == ids[0]
    assert result.ranges[-1][1] == ids[-1]
    assert all(last - first < 2 for first, last in result.ranges)


def test_dispatch_launches_due_campaigns_only(audience):
    due = sending_campaign()
    later = sending_campaign()
    Campaign.objects.filter(pk=later.pk).update(scheduled_at=timezone.now() + timedelta(minutes=5))

    launched = campaigns_dispatch_due()

    assert launched == [due.pk]
    assert Campaign.objects.get(pk=later.pk).status == Campaign.Status.SCHEDULED
    assert Delivery.objects.filter(cause_id=due.pk).count() == 3
    assert campaigns_dispatch_due() == []


def test_dispatch_skips_a_campaign_that_fails_to_launch_and_launches_the_others(audience, monkeypatch):
    from campaigns.delivery import launch

    broken = sending_campaign()
    fine = sending_campaign()
    original = launch.deliveries_insert_for_campaign

    def insert(*, campaign, now):
        if campaign.pk == broken.pk:
            raise RuntimeError("boom")
        return original(campaign=campaign, now=now)

    monkeypatch.setattr(launch, "deliveries_insert_for_campaign", insert)

    assert campaigns_dispatch_due() == [fine.pk]
    assert Campaign.objects.get(pk=broken.pk).status == Campaign.Status.SCHEDULED
    assert not Delivery.objects.filter(cause_id=broken.pk).exists()


def test_a_launch_takes_a_fixed_handful_of_statements_whatever_its_channels_and_audience(audience):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for customer in [CustomerFactory(phone=f"+1415555{n:04d}") for n in range(20)]:
        granted(customer, "email", "sms")
    campaign = sending_campaign()

    with CaptureQueriesContext(connection) as queries:
        result = campaign_launch(campaign=campaign)

    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert result.created == 43
    # The campaign locked and moved to sending (2 + its audit event), its segments and variants read once
    # for both channels (3), the planner settings (PostgreSQL), the insert, the chunk ranges.
    assert len(statements) <= 10, "\n".join(statements)
