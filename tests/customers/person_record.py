"""One person with a record in every table that holds personal data, for the 360° view and the export."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from push_notifications.models import GCMDevice, WebPushDevice

from campaigns.models import (
    Campaign,
    CustomerPushDevice,
    CustomerWebPushDevice,
    Delivery,
    DeliveryEvent,
    Enrolment,
    Journey,
    JourneySegmentMark,
    JourneyStepRun,
    JourneyVersion,
    SegmentMember,
    SmsOptOutReview,
)
from customers.models import Channel, ConsentMethod, MergeProposal, SurveyResponse
from customers.services.consent import Evidence, consent_grant, consent_withdraw
from customers.services.preferences import customer_category_leave, customer_frequency_set, customer_messages_pause
from customers.services.profiles import customer_merge
from loyalty.services import account_enrol, points_redeem, purchase_earn, purchase_refund
from tests.factories import CustomerFactory, PurchaseFactory, StoreFactory, UserFactory
from tests.factories.campaigns import CampaignFactory, SegmentFactory
from tests.factories.loyalty import CouponCodeFactory, ProgrammeFactory, TierFactory


def person_with_everything(*, disclosures) -> dict:
    """Ben, a loyalty member with purchases online and in store (one refunded), a redemption, consent
    granted, pending and withdrawn, preferences, a merged profile, deliveries with provider events."""
    now = timezone.now()
    user = UserFactory()
    store = StoreFactory(code="ldn-soho", name="Soho", time_zone="Europe/London", country="GB")
    ben = CustomerFactory(first_name="Ben", last_name="Okafor", email="ben@example.com", phone="+14155550100")
    consent_grant(
        customer=ben,
        channel=Channel.EMAIL,
        evidence=Evidence(
            method=ConsentMethod.CHECKOUT, store=store, collected_by=user, disclosure=disclosures["email"]
        ),
    )  # pending: email double opt-in
    consent_grant(
        customer=ben,
        channel=Channel.SMS,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=user, basis="Paper form"),
    )
    consent_withdraw(customer=ben, channel=Channel.SMS, evidence=Evidence(method=ConsentMethod.SMS_KEYWORD))
    consent_grant(
        customer=ben,
        channel=Channel.PUSH,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=user, basis="App"),
    )
    preference = Evidence(method=ConsentMethod.PREFERENCE_CENTRE, url="https://shop.example.com/p")
    customer_frequency_set(customer=ben, max_messages_per_week=2, evidence=preference)
    customer_category_leave(customer=ben, category="event", evidence=preference)
    customer_messages_pause(customer=ben, evidence=preference, days=10)

    old = CustomerFactory(first_name="Benny", email="benny@example.com")
    customer_merge(survivor=ben, other=old, user=user)
    stranger = CustomerFactory(phone="+14155550199")
    MergeProposal.objects.create(customer=ben, other=stranger, reason="Same card at the till?")

    online = PurchaseFactory(
        customer=ben,
        channel="online",
        store=None,
        source="online_shop",
        amount=Decimal("40.00"),
        occurred_at=now - timedelta(days=3),
        external_ref="WEB-1",
    )
    in_store = PurchaseFactory(
        customer=ben,
        channel="store",
        store=store,
        source="till",
        amount=Decimal("25.50"),
        occurred_at=now - timedelta(days=1),
        external_ref="SOHO-7",
    )
    refunded = PurchaseFactory(
        customer=old,
        channel="store",
        store=store,
        source="till",
        amount=Decimal("100.00"),
        occurred_at=now - timedelta(days=20),
        external_ref="SOHO-3",
    )
    programme = ProgrammeFactory()
    TierFactory(programme=programme, name="Silver", rank=1, threshold_points=0)
    account, _ = account_enrol(customer=ben, programme=programme, store=store)
    for purchase in (online, in_store, refunded):
        purchase_earn(purchase=purchase, programme=programme)
    purchase_refund(purchase=refunded, programme=programme)
    points_redeem(account=account, channel="online", order_reference="WEB-2", idempotency_key="r1", points=20)
    CouponCodeFactory(offer__programme=programme, account=account, issued_at=now)

    campaign = CampaignFactory(name="Spring sale")
    Campaign.objects.filter(pk=campaign.pk).update(started_at=now)
    delivery = Delivery.objects.create(
        cause_type="campaign",
        cause_id=campaign.pk,
        customer=ben,
        channel="email",
        message_id=campaign.message_id,
        created_at=now,
        updated_at=now,
        status=Delivery.Status.SENT,
        sent_at=now,
        address="ben@example.com",
        opened_at=now,
    )
    DeliveryEvent.objects.create(
        provider="postmark", provider_event_id="ev-1", delivery_id=delivery.pk, kind="opened", occurred_at=now
    )
    SmsOptOutReview.objects.create(
        message_sid="SM1",
        from_number="+14155550100",
        customer=ben,
        body="please stop texting me",
        matched="stop texting",
        received_at=now,
    )
    SegmentMember.objects.create(segment=SegmentFactory(name="VIP upload"), customer=ben)
    journey = Journey.objects.create(name="Welcome", trigger=Journey.Trigger.SEGMENT_JOINED)
    version = JourneyVersion.objects.create(journey=journey, number=1, steps=[{"key": "hello", "kind": "exit"}])
    enrolment = Enrolment.objects.create(
        journey=journey, version=version, customer=ben, step_key="hello", entered_at=now, due_at=now
    )
    JourneyStepRun.objects.create(enrolment=enrolment, step_key="hello", kind="exit", version=version, ran_at=now)
    JourneySegmentMark.objects.create(journey=journey, customer=ben)
    SurveyResponse.objects.create(
        customer=ben, source="campaign:1", score=9, comment="Great staff", answered_at=now, first_answered_at=now
    )
    CustomerPushDevice.objects.create(
        customer=ben, device=GCMDevice.objects.create(registration_id="tok-1", cloud_message_type="FCM", name="Pixel")
    )
    CustomerWebPushDevice.objects.create(
        customer=ben,
        device=WebPushDevice.objects.create(
            registration_id="https://push.example/1", p256dh="k", auth="a", browser="CHROME"
        ),
    )
    ben.refresh_from_db()
    return {
        "customer": ben,
        "merged": old,
        "store": store,
        "account": account,
        "campaign": campaign,
        "programme": programme,
        "user": user,
    }
