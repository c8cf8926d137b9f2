"""Campaign status machine, scheduling checks, duplication, audit trail and the forecast."""

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.audience import CHECKS, Check, audience_q, campaign_forecast, check_register, reachable_q
from campaigns.exceptions import CampaignError, NotReadyError, TransitionError
from campaigns.models import AuditEvent, Campaign, CustomerPushDevice
from campaigns.services.campaigns import (
    campaign_duplicate,
    campaign_record_changes,
    campaign_save,
    campaign_schedule,
    campaign_snapshot,
    campaign_staff_moves,
    campaign_status_change,
    campaign_transition,
)
from customers.models import ConsentState, Customer, Suppression
from customers.normalization import address_hmac
from tests.factories import CustomerFactory, UserFactory
from tests.factories.campaigns import (
    CampaignFactory,
    EmailVariantFactory,
    SegmentFactory,
    SmsVariantFactory,
)

pytestmark = pytest.mark.django_db
S = Campaign.Status


@pytest.fixture
def ready_campaign():
    campaign = CampaignFactory(channels="email,sms", include=[SegmentFactory()])
    EmailVariantFactory(message=campaign.message)
    SmsVariantFactory(message=campaign.message)
    return campaign


def test_schedule_then_send_then_finish(ready_campaign):
    user = UserFactory()
    at = timezone.now() + timedelta(hours=2)
    campaign_schedule(campaign=ready_campaign, at=at, actor=user)
    assert ready_campaign.status == S.SCHEDULED
    campaign_transition(campaign=ready_campaign, to=S.SENDING, actor=None)
    campaign_transition(campaign=ready_campaign, to=S.PAUSED, actor=user)
    campaign_transition(campaign=ready_campaign, to=S.SENDING, actor=user)
    campaign_transition(campaign=ready_campaign, to=S.SENT, actor=None)
    ready_campaign.refresh_from_db()
    assert ready_campaign.status == S.SENT
    assert ready_campaign.started_at
    assert ready_campaign.finished_at
    trail = list(AuditEvent.objects.filter(campaign=ready_campaign).order_by("id").values_list("changes", flat=True))
    assert [change["status"] for change in trail] == [
        ["draft", "scheduled"],
        ["scheduled", "sending"],
        ["sending", "paused"],
        ["paused", "sending"],
        ["sending", "sent"],
    ]


@pytest.mark.parametrize(
    ("start", "to"),
    [(S.DRAFT, S.SENDING), (S.DRAFT, S.SENT), (S.SENT, S.DRAFT), (S.CANCELLED, S.SCHEDULED), (S.SENDING, S.DRAFT)],
)
def test_forbidden_transitions_change_nothing(start, to):
    campaign = CampaignFactory()
    Campaign.objects.filter(pk=campaign.pk).update(status=start)
    campaign.refresh_from_db()
    with pytest.raises(TransitionError):
        campaign_transition(campaign=campaign, to=to, actor=None)
    campaign.refresh_from_db()
    assert campaign.status == start
    assert not AuditEvent.objects.filter(campaign=campaign).exists()


def test_schedule_refuses_incomplete_campaign_and_lists_why():
    campaign = CampaignFactory(channels="email,push")
    EmailVariantFactory(message=campaign.message, subject="{{ settings.SECRET_KEY }}")
    with pytest.raises(NotReadyError) as caught:
        campaign_schedule(campaign=campaign, at=timezone.now() + timedelta(days=1), actor=None)
    text = str(caught.value)
    assert "segment" in text
    assert "no default push variant" in text
    assert "email variant has errors" in text
    campaign.refresh_from_db()
    assert campaign.status == S.DRAFT


def test_schedule_refuses_the_past(ready_campaign):
    with pytest.raises(CampaignError):
        campaign_schedule(campaign=ready_campaign, at=timezone.now() - timedelta(minutes=1), actor=None)


def test_duplicate_copies_message_and_variants_as_a_draft(ready_campaign):
    excluded = SegmentFactory()
    ready_campaign.exclude_segments.add(excluded)
    campaign_transition(campaign=ready_campaign, to=S.CANCELLED, actor=None)
    copy = campaign_duplicate(campaign=ready_campaign, actor=UserFactory())
    assert copy.status == S.DRAFT
    assert copy.message_id != ready_campaign.message_id
    assert sorted(copy.message.variants.values_list("channel", flat=True)) == ["email", "sms"]
    assert list(copy.exclude_segments.all()) == [excluded]
    assert copy.duplicated_from == ready_campaign
    assert AuditEvent.objects.filter(campaign=copy, action="duplicated").exists()


def test_changes_are_recorded_with_before_and_after(ready_campaign):
    user = UserFactory()
    before = campaign_snapshot(ready_campaign)
    ready_campaign.name = "Spring sale"
    ready_campaign.save()
    changes = campaign_record_changes(campaign=ready_campaign, actor=user, before=before)
    assert changes["name"][1] == "Spring sale"
    event = AuditEvent.objects.get(campaign=ready_campaign, action="changed")
    assert event.actor == user
    with pytest.raises(ValueError):
        event.save()


def _granted(customer, *channels):
    for channel in channels:
        ConsentState.objects.create(customer=customer, channel=channel, status="granted")
    return customer


def test_forecast_counts_reachable_and_removed_by_reason():
    reachable = _granted(CustomerFactory(phone="+14155550101"), "email", "sms")
    _granted(CustomerFactory(), "email")  # no phone: missing address for SMS, no SMS consent first
    suppressed = _granted(CustomerFactory(phone="+14155550102"), "email", "sms")
    Suppression.objects.create(channel="email", address_hmac=address_hmac("email", suppressed.email), reason="manual")
    _granted(CustomerFactory(email=None, phone="+14155550103"), "email", "sms")  # consent but no email
    CustomerFactory()  # no consent at all
    campaign = CampaignFactory(channels="email,sms", include=[SegmentFactory()])
    forecast = campaign_forecast(campaign)
    assert forecast.audience == 5
    email, sms = forecast.channels
    assert email.reachable == 2
    assert {reason: count for reason, _, count in email.removed} == {
        "no_consent": 1,
        "missing_address": 1,
        "suppressed": 1,
        "paused": 0,
        "category_left": 0,
    }
    assert sms.reachable == 3
    assert {reason: count for reason, _, count in sms.removed}["no_consent"] == 2
    # The forecast and launching use the same conditions.
    for row in forecast.channels:
        now = timezone.now()
        selected = Customer.objects.filter(reachable_q(row.channel, campaign, now=now))
        assert selected.count() == row.reachable
    assert reachable.pk in Customer.objects.filter(reachable_q("email", campaign, now=timezone.now())).values_list(
        "pk", flat=True
    )


def test_preferred_mode_sends_each_customer_one_channel():
    both = _granted(CustomerFactory(phone="+14155550104"), "email", "sms")
    sms_only = _granted(CustomerFactory(phone="+14155550105"), "sms")
    campaign = CampaignFactory(channels="sms,email", mode=Campaign.Mode.PREFERRED, include=[SegmentFactory()])
    sms, email = campaign_forecast(campaign).channels
    assert sms.reachable == 2
    assert email.reachable == 0
    assert {reason: count for reason, _, count in email.removed}["preferred_elsewhere"] == 1
    assert {both.pk, sms_only.pk} == set(
        Customer.objects.filter(reachable_q("sms", campaign, now=timezone.now())).values_list("pk", flat=True)
    )


def test_excluded_segments_leave_the_audience():
    keep = CustomerFactory(first_name="Keep")
    CustomerFactory(first_name="Drop")
    drop_segment = SegmentFactory(rules={"type": "profile", "field": "first_name", "op": "eq", "value": "Drop"})
    campaign = CampaignFactory(include=[SegmentFactory()], exclude=[drop_segment])
    _granted(keep, "email")
    forecast = campaign_forecast(campaign)
    assert forecast.audience == 1
    assert forecast.channels[0].reachable == 1


def test_push_needs_an_active_device():
    from push_notifications.models import GCMDevice

    with_device = _granted(CustomerFactory(), "push")
    _granted(CustomerFactory(), "push")
    CustomerPushDevice.objects.create(
        customer=with_device, device=GCMDevice.objects.create(registration_id="a", cloud_message_type="FCM")
    )
    campaign = CampaignFactory(channels="push", include=[SegmentFactory()])
    [push] = campaign_forecast(campaign).channels
    assert push.reachable == 1
    assert {reason: count for reason, _, count in push.removed}["missing_address"] == 1


def test_later_checks_plug_into_the_forecast(django_assert_max_num_queries):
    """Frequency caps and quiet hours arrive later as checks; the forecast reports them with no change."""
    from django.db.models import Q

    _granted(CustomerFactory(first_name="Capped"), "email")
    _granted(CustomerFactory(first_name="Night"), "email")
    _granted(CustomerFactory(first_name="Fine"), "email")
    saved = list(CHECKS)
    try:
        check_register(
            Check(
                "frequency_cap",
                "Frequency cap",
                lambda channel, campaign, now: Q(first_name="Capped"),
                applies=lambda channel, campaign: campaign is None or campaign.is_marketing,
            )
        )
        check_register(
            Check("quiet_hours", "Quiet hours", lambda channel, campaign, now: Q(first_name="Night"), effect="defer")
        )
        campaign = CampaignFactory(include=[SegmentFactory()])
        with django_assert_max_num_queries(3):
            [email] = campaign_forecast(campaign).channels
        assert email.reachable == 2
        assert email.deferred == 1
        assert {reason: count for reason, _, count in email.removed}["frequency_cap"] == 1
        transactional = CampaignFactory(include=[SegmentFactory()], category="transactional")
        assert campaign_forecast(transactional).channels[0].reachable == 3
    finally:
        CHECKS[:] = saved


@pytest.mark.parametrize("n", [2, 30])
def test_forecast_query_count_does_not_grow_with_the_audience(n, django_assert_num_queries):
    for index in range(n):
        _granted(CustomerFactory(phone=f"+1415555{index:04d}"), "email", "sms")
    segments = [SegmentFactory(rules={"type": "consent", "channel": "email", "op": "granted"}), SegmentFactory()]
    campaign = CampaignFactory(channels="email,sms,push", mode=Campaign.Mode.PREFERRED, include=segments)
    campaign = Campaign.objects.get(pk=campaign.pk)
    # Included segments, excluded segments, then one aggregate for every channel and reason.
    with django_assert_num_queries(3):
        forecast = campaign_forecast(campaign)
    assert forecast.channels[0].reachable == n


def test_variant_choice_by_persona_in_sql():
    from django.utils import timezone as tz

    from campaigns.audience import variant_choice
    from tests.factories.campaigns import MessageFactory, PersonaFactory

    parents = PersonaFactory(name="Parents", rules={"type": "attribute", "key": "kids", "op": "is_set"})
    message = MessageFactory()
    default = EmailVariantFactory(message=message)
    for_parents = EmailVariantFactory(message=message, persona=parents, subject="For the family")
    parent = CustomerFactory(attributes={"kids": 2})
    other = CustomerFactory()
    chosen = dict(
        Customer.objects.annotate(variant_id=variant_choice(message, "email", now=tz.now())).values_list(
            "pk", "variant_id"
        )
    )
    assert chosen == {parent.pk: for_parents.pk, other.pk: default.pk}


def test_a_persona_cell_must_use_a_persona_segment():
    from django.core.exceptions import ValidationError

    variant = EmailVariantFactory.build(message=CampaignFactory().message, persona=SegmentFactory())
    with pytest.raises(ValidationError) as caught:
        variant.full_clean()
    assert "persona" in caught.value.message_dict


person_st = st.fixed_dictionaries(
    {
        "email": st.booleans(),
        "phone": st.booleans(),
        "device": st.booleans(),
        "consent": st.fixed_dictionaries({c: st.booleans() for c in ("email", "sms", "push")}),
        "suppressed": st.fixed_dictionaries({c: st.booleans() for c in ("email", "sms")}),
    }
)


def _forecast_oracle(people, order, mode):
    """Per channel: (reachable, {reason: count}) read in plain Python."""
    result, sendable = {}, {}
    for channel in order:
        reasons = {
            "no_consent": 0,
            "missing_address": 0,
            "suppressed": 0,
            "paused": 0,
            "category_left": 0,
            "preferred_elsewhere": 0,
        }
        reachable = 0
        for index, p in enumerate(people):
            has_address = {"email": p["email"], "sms": p["phone"], "push": p["device"]}[channel]
            suppressed = channel in p["suppressed"] and p["suppressed"][channel] and has_address
            if not p["consent"][channel]:
                reasons["no_consent"] += 1
            elif not has_address:
                reasons["missing_address"] += 1
            elif suppressed:
                reasons["suppressed"] += 1
            elif mode == "preferred" and any(sendable.get((e, index)) for e in order[: order.index(channel)]):
                reasons["preferred_elsewhere"] += 1
                sendable[(channel, index)] = True
            else:
                reachable += 1
                sendable[(channel, index)] = True
        result[channel] = (reachable, reasons)
    return result


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    people=st.lists(person_st, max_size=8),
    order=st.permutations(["email", "sms", "push"]).map(lambda p: p[: 1 + len(p[0]) % 3]),
    mode=st.sampled_from(["all", "preferred"]),
)
def test_forecast_matches_python_oracle_and_what_sending_selects(db, people, order, mode):
    from django.db import transaction
    from push_notifications.models import GCMDevice

    with transaction.atomic():
        for index, p in enumerate(people):
            customer = CustomerFactory(
                email=f"f{index}@example.com" if p["email"] else None,
                phone=f"+1415777{index:04d}" if p["phone"] else None,
            )
            for channel, granted in p["consent"].items():
                if granted:
                    ConsentState.objects.create(customer=customer, channel=channel, status="granted")
            if p["device"]:
                device = GCMDevice.objects.create(registration_id=f"d{index}", cloud_message_type="FCM")
                CustomerPushDevice.objects.create(customer=customer, device=device)
            for channel, address in (("email", customer.email), ("sms", customer.phone)):
                if p["suppressed"][channel] and address:
                    Suppression.objects.create(
                        channel=channel, address_hmac=address_hmac(channel, address), reason="manual"
                    )
        campaign = CampaignFactory(channels=",".join(order), mode=mode, include=[SegmentFactory()])
        forecast = campaign_forecast(campaign)
        expected = _forecast_oracle(people, order, mode)
        now = timezone.now()
        for row in forecast.channels:
            reachable, reasons = expected[row.channel]
            assert row.reachable == reachable
            got = {reason: count for reason, _, count in row.removed}
            assert got == {k: v for k, v in reasons.items() if k in got}
            assert row.reachable + row.removed_total == len(people)
            assert (
                Customer.objects.filter(
                    audience_q(campaign, now=now) & reachable_q(row.channel, campaign, now=now)
                ).count()
                == reachable
            )
        transaction.set_rollback(True)


# --- staff status moves, saving --------------------------------------------------------------------


def test_staff_schedule_a_draft_then_pause_and_resume(ready_campaign):
    user = UserFactory()
    campaign_status_change(campaign=ready_campaign, to=S.SCHEDULED, at=timezone.now() + timedelta(days=1), actor=user)
    campaign_status_change(campaign=ready_campaign, to=S.PAUSED, actor=user)
    campaign_status_change(campaign=ready_campaign, to=S.SENDING, actor=user)
    ready_campaign.refresh_from_db()
    assert ready_campaign.status == S.SENDING
    assert [e.changes["status"] for e in AuditEvent.objects.filter(campaign=ready_campaign).order_by("id")] == [
        ["draft", "scheduled"],
        ["scheduled", "paused"],
        ["paused", "sending"],
    ]


@pytest.mark.parametrize(
    ("start", "to"),
    [(S.SCHEDULED, S.SENDING), (S.SENDING, S.SENT), (S.DRAFT, S.PAUSED), (S.SENT, S.CANCELLED), (S.DRAFT, "bogus")],
)
def test_a_refused_staff_move_changes_nothing(ready_campaign, start, to):
    Campaign.objects.filter(pk=ready_campaign.pk).update(status=start)
    ready_campaign.refresh_from_db()
    before = campaign_snapshot(ready_campaign)
    with pytest.raises(TransitionError):
        campaign_status_change(campaign=ready_campaign, to=to, actor=UserFactory())
    stored = Campaign.objects.get(pk=ready_campaign.pk)
    assert stored.status == start
    assert campaign_snapshot(stored) == before
    assert not AuditEvent.objects.filter(campaign=ready_campaign).exists()


def test_staff_scheduling_without_a_time_or_an_incomplete_draft_changes_nothing(ready_campaign):
    with pytest.raises(CampaignError, match="send time"):
        campaign_status_change(campaign=ready_campaign, to=S.SCHEDULED, actor=None)
    ready_campaign.include_segments.clear()
    with pytest.raises(NotReadyError):
        campaign_status_change(
            campaign=ready_campaign, to=S.SCHEDULED, at=timezone.now() + timedelta(days=1), actor=None
        )
    assert Campaign.objects.get(pk=ready_campaign.pk).status == S.DRAFT
    assert not AuditEvent.objects.filter(campaign=ready_campaign).exists()


def test_staff_moves_leave_the_engine_moves_out():
    campaign = CampaignFactory()
    for status, expected in [
        (S.DRAFT, [S.SCHEDULED, S.CANCELLED]),
        (S.SCHEDULED, [S.DRAFT, S.PAUSED, S.CANCELLED]),
        (S.SENDING, [S.PAUSED, S.CANCELLED]),
        (S.SENT, []),
    ]:
        campaign.status = status
        assert sorted(campaign_staff_moves(campaign)) == sorted(expected)


def test_campaign_save_creates_a_draft_with_its_message_segments_and_audit():
    user, segment = UserFactory(), SegmentFactory()
    campaign = Campaign(name="Autumn", channels=["email"])
    campaign_save(campaign=campaign, actor=user, include_segments=[segment])
    stored = Campaign.objects.get(pk=campaign.pk)
    assert stored.status == S.DRAFT
    assert stored.created_by == user
    assert stored.message.name == "Autumn"
    assert list(stored.include_segments.all()) == [segment]
    assert AuditEvent.objects.get(campaign=stored).action == "created"


def test_campaign_save_records_changed_fields_and_segments(ready_campaign):
    other = SegmentFactory(name="Other")
    ready_campaign.name = "Renamed"
    campaign_save(campaign=ready_campaign, actor=None, include_segments=[other])
    event = AuditEvent.objects.get(campaign=ready_campaign, action="changed")
    assert event.changes["name"][1] == "Renamed"
    assert event.changes["include_segments"][1] == ["Other"]


def test_campaign_save_refuses_a_campaign_that_started_sending_and_changes_nothing(ready_campaign):
    Campaign.objects.filter(pk=ready_campaign.pk).update(status=S.SENDING)
    ready_campaign.name = "Too late"
    with pytest.raises(CampaignError, match="started sending"):
        campaign_save(campaign=ready_campaign, actor=None, include_segments=[])
    stored = Campaign.objects.get(pk=ready_campaign.pk)
    assert stored.name != "Too late"
    assert stored.status == S.SENDING
    assert stored.include_segments.exists()
    assert not AuditEvent.objects.filter(campaign=ready_campaign).exists()


def test_campaign_save_never_moves_the_status(ready_campaign):
    Campaign.objects.filter(pk=ready_campaign.pk).update(status=S.SCHEDULED)
    ready_campaign.status = S.DRAFT  # a stale copy read before it was scheduled
    campaign_save(campaign=ready_campaign, actor=None)
    assert Campaign.objects.get(pk=ready_campaign.pk).status == S.SCHEDULED


@pytest.mark.parametrize(
    ("channels", "problem"),
    [
        (["email", "fax"], "Unknown channel 'fax'"),
        (["sms", "sms"], "Name each channel once"),
        ([], "Choose at least one channel"),
        ("email,sms", "as a list"),
    ],
)
def test_channels_are_a_list_of_known_channels_each_once(channels, problem):
    from django.core.exceptions import ValidationError

    campaign = CampaignFactory.build(channels=["email"], message=None)
    campaign.channels = channels
    with pytest.raises(ValidationError, match=problem):
        campaign.clean()


def test_channel_list_keeps_the_order_and_is_a_copy():
    campaign = CampaignFactory(channels="push,sms,email")
    campaign.refresh_from_db()
    order = campaign.channel_list
    order.append("fax")
    assert campaign.channel_list == ["push", "sms", "email"]
