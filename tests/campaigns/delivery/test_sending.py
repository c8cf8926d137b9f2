"""Sending a chunk: one claim, the send-time re-check, rendering, the outbox or a provider, bulk outcomes."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.channels import registry
from campaigns.channels.base import SendResult
from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import deliveries_claim, delivery_chunk_send
from campaigns.exceptions import PermanentChannelError, TransientChannelError
from campaigns.models import Campaign, Delivery, OutboxMessage
from campaigns.services.campaigns import campaign_transition
from customers.models import ConsentMethod
from customers.services import consent_withdraw
from customers.services.consent import Evidence
from tests.campaigns.delivery.conftest import granted, sending_campaign, suppress
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
S = Delivery.Status


def _launched(**kwargs):
    campaign = sending_campaign(**kwargs)
    result = campaign_launch(campaign=campaign)
    return campaign, (result.ranges[0][0], result.ranges[-1][1])


def _send(campaign, ids, **kwargs):
    return delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1], **kwargs)


def _statuses(campaign):
    rows = Delivery.objects.filter(cause_id=campaign.pk).values_list("customer_id", "channel", "status", "reason")
    return {(customer, channel): (status, reason) for customer, channel, status, reason in rows}


def test_a_chunk_sends_each_delivery_once_into_the_outbox(audience):
    campaign, ids = _launched()

    result = _send(campaign, ids)

    both, email_only = audience["both"], audience["email_only"]
    assert result.claimed == 3
    assert _statuses(campaign) == {
        (email_only.pk, "email"): ("sent", ""),
        (both.pk, "email"): ("sent", ""),
        (both.pk, "sms"): ("sent", ""),
    }
    email = OutboxMessage.objects.get(to=both.email)
    assert email.subject == "Hello Bob"
    assert "Hi Bob" in email.html
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    sms = OutboxMessage.objects.get(channel="sms")
    assert sms.to == both.phone
    assert sms.text.startswith("Tandem Stores: hi Bob")
    row = Delivery.objects.get(cause_id=campaign.pk, customer_id=both.pk, channel="email")
    assert (row.attempts, row.address, row.lease_until) == (1, both.email, None)
    assert row.sent_at is not None
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_a_second_copy_of_the_chunk_claims_and_sends_nothing(audience):
    campaign, ids = _launched()
    _send(campaign, ids)

    again = _send(campaign, ids)

    assert again.claimed == 0
    assert OutboxMessage.objects.count() == 3
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_a_claimed_row_is_not_claimed_again(audience):
    campaign, ids = _launched()
    now = timezone.now()

    first = deliveries_claim(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1], now=now)
    second = deliveries_claim(cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1], now=now)

    assert len(first) == 3
    assert second == []
    assert set(Delivery.objects.values_list("status", flat=True)) == {S.SENDING}


@pytest.mark.parametrize("status", [Campaign.Status.PAUSED, Campaign.Status.CANCELLED])
def test_a_paused_or_cancelled_campaign_claims_nothing(audience, status):
    campaign, ids = _launched()
    campaign_transition(campaign=campaign, to=status, actor=None)

    result = _send(campaign, ids)

    assert result.claimed == 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {S.QUEUED}
    assert not OutboxMessage.objects.exists()


def test_rows_not_yet_due_are_not_claimed(audience):
    campaign, ids = _launched()
    Delivery.objects.update(not_before=timezone.now() + timedelta(minutes=5))

    assert _send(campaign, ids).claimed == 0


def test_a_withdrawal_committed_before_the_claim_is_honoured(audience):
    campaign, ids = _launched()
    both = audience["both"]
    consent_withdraw(customer=both, channel="sms", evidence=Evidence(method=ConsentMethod.PREFERENCE_CENTRE))

    _send(campaign, ids)

    statuses = _statuses(campaign)
    assert statuses[(both.pk, "sms")] == ("skipped", "no_consent")
    assert statuses[(both.pk, "email")] == ("sent", "")
    assert not OutboxMessage.objects.filter(channel="sms").exists()


def test_an_address_suppressed_after_launch_is_skipped(audience):
    campaign, ids = _launched()
    suppress(audience["email_only"])

    _send(campaign, ids)

    assert _statuses(campaign)[(audience["email_only"].pk, "email")] == ("skipped", "suppressed")


def test_profiles_merged_away_or_erased_after_launch_are_skipped(audience):
    campaign, ids = _launched()
    both, email_only = audience["both"], audience["email_only"]
    email_only.merged_into = audience["none"]
    email_only.save()
    both.erased_at = timezone.now()
    both.save()

    _send(campaign, ids)

    statuses = _statuses(campaign)
    assert statuses[(email_only.pk, "email")] == ("skipped", "merged")
    assert statuses[(both.pk, "email")] == ("skipped", "erased")
    assert statuses[(both.pk, "sms")] == ("skipped", "erased")
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize("customers", [10, 40])
def test_a_chunk_takes_a_bounded_number_of_queries(django_assert_max_num_queries, customers):
    for index in range(customers):
        granted(CustomerFactory(phone=f"+1415555{index:04d}"), "email", "sms")
    campaign, ids = _launched()

    # Claim, cause, customers with their checks, variants, loyalty, quiet-hours rules, frequency rules
    # and their set-based reservations, outcomes, outbox, and finishing the campaign (lock, transition,
    # audit), savepoints included: the same bound whatever the chunk size.
    with django_assert_max_num_queries(34):
        result = _send(campaign, ids)

    assert result.statuses == {"sent": 2 * customers}
    assert OutboxMessage.objects.count() == 2 * customers


class _Backend:
    """A provider stub behind the channel protocol: sends, or raises what ``behaviour`` names."""

    channel = "email"
    sent: list = []
    batches: list = []

    def __init__(self, behaviour):
        self.behaviour = behaviour

    def build_payload(self, *, rendered, to, metadata, links):
        return {"to": to, "subject": getattr(rendered, "subject", ""), "metadata": metadata}

    def send(self, payload):
        if self.behaviour == "transient":
            raise TransientChannelError("503 from the provider")
        if self.behaviour == "permanent":
            raise PermanentChannelError("mailbox does not exist")
        if self.behaviour == "opted_out":
            raise PermanentChannelError("Attempt to send to unsubscribed recipient", opted_out=True)
        self.sent.append(payload)
        return SendResult(provider_id=f"prov-{payload['metadata']['delivery_id']}")

    def send_many(self, payloads):
        self.batches.append(len(payloads))
        # Every row of the batch was marked as handed over before the provider saw any of it.
        assert not Delivery.objects.filter(pk__in=[p["metadata"]["delivery_id"] for p in payloads], handed_at=None)
        results = []
        for payload in payloads:
            try:
                results.append(self.send(payload))
            except (TransientChannelError, PermanentChannelError) as exc:
                results.append(exc)
        return results


@pytest.fixture
def provider(settings, monkeypatch):
    settings.DELIVERY_OUTBOX_CHANNELS = []
    registry.channel_get("sms")  # register the defaults first

    def use(behaviour, channel="email"):
        _Backend.sent = []
        _Backend.batches = []
        monkeypatch.setitem(registry._factories, channel, lambda: _Backend(behaviour))

    return use


def test_a_provider_send_records_its_message_id(audience, provider):
    provider("ok")
    campaign, ids = _launched(channels="email")

    _send(campaign, ids)

    row = Delivery.objects.get(customer_id=audience["email_only"].pk)
    assert (row.status, row.provider_message_id) == (S.SENT, f"prov-{row.pk}")
    assert {payload["metadata"]["delivery_id"] for payload in _Backend.sent} == set(
        Delivery.objects.values_list("id", flat=True)
    )
    assert {payload["metadata"]["campaign_id"] for payload in _Backend.sent} == {campaign.pk}
    assert _Backend.batches == [len(_Backend.sent)]  # the chunk reached the provider in one batch
    assert not OutboxMessage.objects.exists()


def test_a_transient_error_requeues_with_backoff_then_fails_after_the_last_attempt(audience, provider, settings):
    provider("transient")
    settings.DELIVERY_MAX_ATTEMPTS = 2
    campaign, ids = _launched(channels="email")
    now = timezone.now()

    _send(campaign, ids, now=now)

    row = Delivery.objects.get(customer_id=audience["email_only"].pk)
    assert (row.status, row.attempts, row.error) == (S.QUEUED, 1, "503 from the provider")
    assert row.not_before > now
    assert _send(campaign, ids, now=now).claimed == 0  # not due yet

    _send(campaign, ids, now=max(Delivery.objects.values_list("not_before", flat=True)))  # jitter spreads them

    row.refresh_from_db()
    assert (row.status, row.reason, row.attempts) == (S.FAILED, "provider_unavailable", 2)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


def test_a_permanent_error_fails_without_retry(audience, provider):
    provider("permanent")
    campaign, ids = _launched(channels="email")

    _send(campaign, ids)

    row = Delivery.objects.get(customer_id=audience["email_only"].pk)
    assert (row.status, row.reason, row.error) == (S.FAILED, "provider_refused", "mailbox does not exist")
    assert row.not_before is None


def test_email_through_the_real_email_channel_carries_the_delivery_id(audience, settings):
    settings.DELIVERY_OUTBOX_CHANNELS = []
    campaign, ids = _launched(channels="email")

    _send(campaign, ids)

    assert len(mail.outbox) == 2
    by_id = {message.metadata["delivery_id"]: message for message in mail.outbox}
    row = Delivery.objects.get(customer_id=audience["both"].pk)
    assert by_id[str(row.pk)].to == [audience["both"].email]
    assert by_id[str(row.pk)].extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_push_goes_to_every_active_device_of_the_customer_as_a_card():
    from push_notifications.models import GCMDevice

    from campaigns.models import CustomerPushDevice
    from tests.factories.campaigns import PushVariantFactory

    customer = granted(CustomerFactory(first_name="Pia"), "push")
    phone = GCMDevice.objects.create(registration_id="token-1", cloud_message_type="FCM")
    tablet = GCMDevice.objects.create(registration_id="token-2", cloud_message_type="FCM")
    retired = GCMDevice.objects.create(registration_id="token-3", cloud_message_type="FCM", active=False)
    for device in (phone, tablet, retired):
        CustomerPushDevice.objects.create(customer=customer, device=device)
    campaign = sending_campaign(channels="push")
    PushVariantFactory(message=campaign.message)
    ids = campaign_launch(campaign=campaign).ranges[0]

    _send(campaign, ids)

    card = OutboxMessage.objects.get(channel="push")
    expected = f"devices:{phone.pk},{tablet.pk}"
    assert (card.to, card.title, card.url) == (expected, "Hi Pia", "https://shop.example.com/spring")
    assert Delivery.objects.get(customer_id=customer.pk).status == S.SENT


def test_a_carrier_opt_out_withdraws_sms_consent_and_suppresses_the_number(audience, provider):
    from customers.models import ConsentEvidence, ConsentState, Suppression
    from customers.normalization import address_hmac

    provider("opted_out", channel="sms")
    campaign, ids = _launched(channels="sms")
    both = audience["both"]

    _send(campaign, ids)

    row = Delivery.objects.get(customer_id=both.pk, channel="sms")
    assert (row.status, row.reason) == (S.FAILED, "provider_refused")
    assert ConsentState.objects.get(customer=both, channel="sms").status == "withdrawn"
    entry = ConsentEvidence.objects.get(customer=both, channel="sms", action="withdraw")
    assert entry.source_reference == f"delivery:{row.pk}"
    suppression = Suppression.objects.get(channel="sms", address_hmac=address_hmac("sms", both.phone))
    assert suppression.reason == "carrier_opt_out"


def test_a_retry_lost_before_its_provider_call_is_sent_again_not_left_unknown(audience, provider):
    from campaigns.delivery.sweeper import deliveries_sweep

    provider("transient")
    campaign, ids = _launched(channels="email")
    _send(campaign, ids)  # handed over, refused for now: queued again with a backoff
    retry_at = Delivery.objects.get(customer_id=audience["email_only"].pk).not_before
    # The retry is claimed, then its worker dies before this attempt reaches the provider.
    claimed = deliveries_claim(
        cause_type="campaign", cause_id=campaign.pk, first_id=ids[0], last_id=ids[1], now=retry_at
    )

    swept = deliveries_sweep(now=retry_at + timedelta(hours=1))

    assert (swept.requeued, swept.lease_expired) == (len(claimed), 0)
    assert set(Delivery.objects.values_list("status", flat=True)) == {S.QUEUED}


def test_a_chunk_that_outlived_its_lease_writes_no_outbox_message_for_rows_taken_back(audience, monkeypatch):
    from campaigns.delivery import sending
    from campaigns.delivery.sweeper import deliveries_sweep

    campaign, ids = _launched()
    record = sending.deliveries_record

    def stalled(*, now, **kwargs):  # the chunk stalls past its lease; meanwhile its rows are taken back ...
        deliveries_sweep(now=now + timedelta(hours=1))
        campaign_transition(campaign=Campaign.objects.get(pk=campaign.pk), to=Campaign.Status.CANCELLED, actor=None)
        deliveries_sweep(now=now + timedelta(hours=1))
        return record(now=now, **kwargs)

    monkeypatch.setattr(sending, "deliveries_record", stalled)
    _send(campaign, ids)  # ... and the chunk resumes

    assert set(Delivery.objects.values_list("status", flat=True)) == {S.CANCELLED}
    assert not OutboxMessage.objects.exists()  # the outbox is written only with an outcome that was recorded
