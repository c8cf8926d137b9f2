"""A preference-centre change takes effect at once: launch leaves the customer out, and a delivery
already queued is skipped by the send-time re-check of the next chunk."""

import pytest

from campaigns.audience import campaign_forecast
from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Campaign, Delivery, OutboxMessage
from customers.services.preferences import Choice, PreferenceLink, preference_choice_apply
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.factories import CustomerFactory, DisclosureFactory

pytestmark = pytest.mark.django_db


def _choose(customer, choice, **form):
    link = PreferenceLink(customer=customer, source_reference="campaign:1 delivery:1", category="promotional")
    preference_choice_apply(link=link, choice=choice, form=form, ip_address="192.0.2.1")


def _launch(campaign):
    result = campaign_launch(campaign=campaign)
    return result.ranges[0][0], result.ranges[-1][1]


def _send(campaign, ids):
    return delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1])


def _outcome(campaign, customer, channel="email"):
    row = Delivery.objects.get(cause_id=campaign.pk, customer_id=customer.pk, channel=channel)
    return row.status, row.reason


@pytest.fixture
def two():
    return granted(CustomerFactory(first_name="Ann"), "email"), granted(CustomerFactory(first_name="Bob"), "email")


def _sms_disclosure():
    return {"agree": "yes", "disclosure": str(DisclosureFactory(channel="sms", version=1, text="Texts.").pk)}


@pytest.mark.parametrize(
    ("choice", "form", "reason"),
    [
        (Choice.CATEGORY_LEAVE, {"category": "promotional"}, "category_left"),
        (Choice.PAUSE, {}, "paused"),
        (Choice.EMAIL_LEAVE, {}, "no_consent"),
        (Choice.SWITCH_TO_SMS, "sms", "no_consent"),
    ],
)
def test_a_change_after_launch_skips_the_queued_delivery(two, choice, form, reason):
    # given a promotional email campaign launched to two customers
    ann, bob = two
    ann.phone = "+14155550123"
    ann.save()
    campaign = sending_campaign(channels="email", category=Campaign.Category.PROMOTIONAL)
    ids = _launch(campaign)
    # when Ann makes her choice before the chunk runs
    _choose(ann, choice, **(_sms_disclosure() if form == "sms" else form))
    _send(campaign, ids)
    # then nothing goes to her, Bob still gets his
    assert _outcome(campaign, ann) == ("skipped", reason)
    assert _outcome(campaign, bob) == ("sent", "")
    assert list(OutboxMessage.objects.values_list("to", flat=True)) == [bob.email]


def test_leaving_one_category_keeps_the_others(two):
    ann, _bob = two
    _choose(ann, Choice.CATEGORY_LEAVE, category="promotional")
    campaign = sending_campaign(channels="email", category=Campaign.Category.EVENT)
    _send(campaign, _launch(campaign))
    assert _outcome(campaign, ann) == ("sent", "")


def test_transactional_mail_ignores_pause_and_categories(two):
    ann, _bob = two
    _choose(ann, Choice.PAUSE)
    _choose(ann, Choice.CATEGORY_LEAVE, category="promotional")
    campaign = sending_campaign(channels="email", category=Campaign.Category.TRANSACTIONAL)
    _send(campaign, _launch(campaign))
    assert _outcome(campaign, ann) == ("sent", "")


def test_launch_and_the_forecast_leave_out_paused_and_category_leavers():
    paused, leaver, keen = (granted(CustomerFactory(), "email") for _ in range(3))
    _choose(paused, Choice.PAUSE)
    _choose(leaver, Choice.CATEGORY_LEAVE, category="loyalty")
    campaign = sending_campaign(channels="email", category=Campaign.Category.LOYALTY)

    forecast = {row.channel: row for row in campaign_forecast(campaign).channels}["email"]
    removed = {reason: count for reason, _label, count in forecast.removed}
    assert (removed["paused"], removed["category_left"], forecast.reachable) == (1, 1, 1)

    campaign_launch(campaign=campaign)
    assert list(Delivery.objects.filter(cause_id=campaign.pk).values_list("customer_id", flat=True)) == [keen.pk]


def test_a_resumed_customer_is_reached_again():
    customer = granted(CustomerFactory(), "email")
    _choose(customer, Choice.PAUSE)
    _choose(customer, Choice.RESUME)
    campaign = sending_campaign(channels="email")
    _send(campaign, _launch(campaign))
    assert _outcome(campaign, customer) == ("sent", "")


@pytest.mark.send_policies
def test_at_most_one_a_week_holds_back_the_second_campaign():
    # given a customer who chose at most one message a week (the seeded own-choice rule applies it)
    customer = granted(CustomerFactory(), "email")
    _choose(customer, Choice.WEEKLY_ONE)
    first = sending_campaign(channels="email", category=Campaign.Category.PROMOTIONAL)
    second = sending_campaign(channels="email", category=Campaign.Category.PROMOTIONAL)
    # when two promotional campaigns send the same week
    _send(first, _launch(first))
    _send(second, _launch(second))
    # then only the first reaches them
    assert _outcome(first, customer) == ("sent", "")
    assert _outcome(second, customer) == ("skipped", "frequency_cap")
    assert Delivery.objects.get(cause_id=second.pk).error == "The customer's own weekly limit"
