"""The campaign studio demo seed: segments, personas, draft campaigns ready to schedule, one scheduled broadcast."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from campaigns.audience import campaign_forecast, segment_counts
from campaigns.delivery.launch import campaigns_dispatch_due
from campaigns.models import AuditEvent, Campaign, Message, Segment, Variant
from campaigns.services.campaigns import campaign_problems
from campaigns.validation import variant_check

pytestmark = pytest.mark.django_db


def _seed(*commands: str) -> str:
    out = io.StringIO()
    for command in commands:
        call_command(command, stdout=out)
    return out.getvalue()


def _state() -> dict:
    return {
        "segments": sorted(Segment.objects.values_list("name", "is_persona", "rules")),
        "messages": Message.objects.count(),
        "variants": list(
            Variant.objects.order_by("pk").values_list("message__name", "persona__name", "channel", "subject")
        ),
        "campaigns": list(
            Campaign.objects.order_by("pk").values_list("name", "status", "channels", "offer_id", "shared_code_id")
        ),
        "audit": AuditEvent.objects.count(),
    }


def test_refuses_to_run_before_the_loyalty_demo():
    _seed("demo_seed")
    with pytest.raises(CommandError, match="loyalty_demo_seed"):
        _seed("campaigns_demo_seed")
    assert not Segment.objects.exists()
    assert not Campaign.objects.exists()


def test_seed_builds_valid_drafts_and_a_second_run_changes_nothing():
    _seed("demo_seed", "loyalty_demo_seed", "campaigns_demo_seed")
    before = _state()
    output = _seed("campaigns_demo_seed")
    assert _state() == before
    assert "Lapsed in-store shoppers" in output

    names = set(Segment.objects.filter(is_persona=False).values_list("name", flat=True))
    assert {"Lapsed in-store shoppers", "Gold members", "Miami customers"} <= names
    personas = list(Segment.objects.filter(is_persona=True))
    assert 2 <= len(personas) <= 4
    for segment in Segment.objects.all():
        segment.full_clean()  # rules compile; personas carry a description
        assert segment_counts(segment)["total"] > 0, segment.name

    campaigns = list(
        Campaign.objects.exclude(name="Welcome demo broadcast").select_related("offer", "shared_code").order_by("name")
    )
    assert len(campaigns) == 2
    assert all(c.status == Campaign.Status.DRAFT for c in campaigns)
    for campaign in campaigns:
        assert campaign_problems(campaign) == [], campaign.name
        campaign.full_clean()
        for variant in campaign.message.variants.all():
            variant.full_clean()
            variant_check(variant)
    win_back = next(c for c in campaigns if c.offer_id is None)
    defaults = set(win_back.message.variants.filter(persona__isnull=True).values_list("channel", flat=True))
    assert defaults == {"email", "sms", "push"}
    assert win_back.message.variants.filter(persona__is_persona=True).exists()
    with_offer = next(c for c in campaigns if c.offer_id is not None)
    assert with_offer.shared_code.code == "WELCOME10"
    for variant in Variant.objects.filter(channel="sms"):
        assert "Reply STOP to opt out" in variant.sms_body
    # Created through the services: every campaign and variant has its audit trail.
    assert AuditEvent.objects.filter(subject_type="campaign", action="created").count() == 3
    assert AuditEvent.objects.filter(subject_type="variant").count() == Variant.objects.count()


def test_campaign_admin_renders_for_the_demo_marketing_login(client):
    _seed("demo_seed", "loyalty_demo_seed", "campaigns_demo_seed")
    assert client.login(username="marketing", password="demo-marketing-pass")
    page = client.get(reverse("admin:campaigns_campaign_changelist"))
    assert page.status_code == 200
    for campaign in Campaign.objects.all():
        assert campaign.name.encode() in page.content.replace(b"&#x27;", b"'")
        assert client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).status_code == 200
    assert client.get(reverse("admin:campaigns_segment_changelist")).status_code == 200
    segment = Segment.objects.get(name="Miami customers")
    assert client.get(reverse("admin:campaigns_segment_change", args=[segment.pk])).status_code == 200
    assert client.get(reverse("admin:loyalty_loyaltyaccount_changelist")).status_code == 200


def test_seed_schedules_exactly_one_broadcast_a_minute_ahead_that_reaches_people():
    before = timezone.now()
    output = _seed("demo_seed", "loyalty_demo_seed", "campaigns_demo_seed")

    scheduled = list(Campaign.objects.filter(status=Campaign.Status.SCHEDULED))
    assert [c.name for c in scheduled] == ["Welcome demo broadcast"]
    broadcast = scheduled[0]
    assert before + timedelta(seconds=50) <= broadcast.scheduled_at <= timezone.now() + timedelta(minutes=1)
    assert campaign_problems(broadcast) == []
    assert campaign_forecast(broadcast).messages_total > 0
    assert f"/admin/campaigns/campaign/{broadcast.pk}/change/" in output
    assert AuditEvent.objects.filter(subject_type="campaign", subject_id=broadcast.pk, action="status_changed").exists()


def test_rerunning_the_seed_reschedules_an_overdue_broadcast_and_never_adds_another():
    _seed("demo_seed", "loyalty_demo_seed", "campaigns_demo_seed")
    Campaign.objects.filter(name="Welcome demo broadcast").update(scheduled_at=timezone.now() - timedelta(hours=1))

    _seed("campaigns_demo_seed")

    broadcast = Campaign.objects.get(name="Welcome demo broadcast")
    assert broadcast.status == Campaign.Status.SCHEDULED
    assert broadcast.scheduled_at > timezone.now()
    assert Campaign.objects.count() == 3


def test_a_broadcast_that_has_sent_is_left_alone_by_a_rerun():
    _seed("demo_seed", "loyalty_demo_seed", "campaigns_demo_seed")
    broadcast = Campaign.objects.get(name="Welcome demo broadcast")
    launched = campaigns_dispatch_due(now=broadcast.scheduled_at + timedelta(seconds=1))
    assert launched == [broadcast.pk]
    before = _state()

    _seed("campaigns_demo_seed")

    assert _state() == before
    assert Campaign.objects.get(pk=broadcast.pk).status == Campaign.Status.SENDING
