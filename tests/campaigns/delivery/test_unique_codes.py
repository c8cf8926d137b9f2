"""A campaign with a unique-code offer gives each delivery its own code, issued to its recipient, at launch."""

import pytest
from django.db.models import Max, Min

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Campaign, Delivery, OutboxMessage
from loyalty.models import CouponCode, Redemption
from loyalty.services.redemptions import coupon_redeem
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.factories import CustomerFactory
from tests.factories.loyalty import CouponCodeFactory, LoyaltyAccountFactory, OfferFactory

pytestmark = pytest.mark.django_db


def _unique_code_campaign(offer, channels="email"):
    campaign = sending_campaign(channels=channels)
    Campaign.objects.filter(pk=campaign.pk).update(offer=offer, coupon_mode=Campaign.CouponMode.UNIQUE)
    campaign.message.variants.filter(channel="email").update(html_body="<p>Your code: {{ coupon_code }}</p>")
    campaign.refresh_from_db()
    return campaign


def _codes(campaign) -> dict[int, int]:
    return dict(Delivery.objects.filter(cause_id=campaign.pk).values_list("customer_id", "coupon_code_id"))


def test_each_delivery_gets_its_own_code_issued_to_its_recipient():
    offer = OfferFactory(code_mode="unique")
    member = granted(CustomerFactory(), "email")
    account = LoyaltyAccountFactory(customer=member, programme=offer.programme)
    others = [granted(CustomerFactory(), "email") for _ in range(3)]
    CouponCodeFactory.create_batch(6, offer=offer)
    CouponCodeFactory(offer=offer, is_void=True)
    campaign = _unique_code_campaign(offer)

    campaign_launch(campaign=campaign)

    codes = _codes(campaign)
    assert set(codes) == {member.pk, *(c.pk for c in others)}
    assert None not in codes.values()
    assert len(set(codes.values())) == 4  # distinct
    issued = {code.pk: code for code in CouponCode.objects.filter(pk__in=codes.values())}
    assert all(code.issued_at is not None and not code.is_void for code in issued.values())
    assert issued[codes[member.pk]].account == account  # a member's code is theirs alone at the till
    assert {issued[codes[c.pk]].issue_reference for c in others} == {f"campaign:{campaign.pk}"}
    assert CouponCode.objects.filter(offer=offer, issued_at__isnull=True, is_void=False).count() == 2


def test_launching_again_adds_no_code():
    offer = OfferFactory(code_mode="unique")
    for _ in range(3):
        granted(CustomerFactory(), "email")
    CouponCodeFactory.create_batch(5, offer=offer)
    campaign = _unique_code_campaign(offer)
    campaign_launch(campaign=campaign)
    first = _codes(campaign)

    campaign_launch(campaign=campaign)

    assert _codes(campaign) == first
    assert CouponCode.objects.filter(offer=offer).count() == 5
    assert CouponCode.objects.filter(offer=offer, issued_at__isnull=False).count() == 3


def test_too_few_free_codes_are_topped_up_at_launch():
    offer = OfferFactory(code_mode="unique")
    for _ in range(5):
        granted(CustomerFactory(), "email")
    CouponCodeFactory.create_batch(2, offer=offer)
    campaign = _unique_code_campaign(offer)

    campaign_launch(campaign=campaign)

    codes = _codes(campaign)
    assert len(set(codes.values()) - {None}) == 5
    assert CouponCode.objects.filter(offer=offer).count() == 5
    assert not CouponCode.objects.filter(offer=offer, issued_at__isnull=True).exists()


def test_the_email_shows_that_customers_code_and_a_redemption_joins_back_to_the_delivery():
    offer = OfferFactory(code_mode="unique")
    ann = granted(CustomerFactory(), "email")
    bob = granted(CustomerFactory(), "email")
    CouponCodeFactory.create_batch(2, offer=offer)
    campaign = _unique_code_campaign(offer)
    campaign_launch(campaign=campaign)
    span = Delivery.objects.filter(cause_id=campaign.pk).aggregate(low=Min("id"), high=Max("id"))

    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=span["low"], last_id=span["high"])

    for customer in (ann, bob):
        delivery = Delivery.objects.get(cause_id=campaign.pk, customer=customer)
        code = CouponCode.objects.get(pk=delivery.coupon_code_id).code
        assert f"Your code: {code}" in OutboxMessage.objects.get(delivery_id=delivery.pk).html
    ann_code = CouponCode.objects.get(pk=_codes(campaign)[ann.pk])
    redemption, _ = coupon_redeem(
        code=ann_code.code, customer=ann, channel="online", order_reference="A-1", idempotency_key="ann-1"
    )
    # Attribution: redemption -> code <- delivery.
    attributed = Delivery.objects.get(coupon_code_id=Redemption.objects.get(pk=redemption.pk).coupon_code_id)
    assert (attributed.cause_id, attributed.customer_id) == (campaign.pk, ann.pk)


def test_allotting_costs_the_same_queries_whatever_the_audience(django_assert_max_num_queries):
    def launch_to(size: int) -> None:
        offer = OfferFactory(code_mode="unique")
        CustomerFactory.create_batch(size)  # granted below, in bulk
        for customer in CustomerFactory._meta.model.objects.filter(consent_states__isnull=True):
            granted(customer, "email")
        CouponCodeFactory.create_batch(size * 2, offer=offer)
        campaign = _unique_code_campaign(offer)
        with django_assert_max_num_queries(24):
            campaign_launch(campaign=campaign)
        assert len(set(_codes(campaign).values()) - {None}) == len(_codes(campaign))

    launch_to(3)
    launch_to(60)


def test_a_shared_code_campaign_draws_no_unique_code():
    shared = CouponCodeFactory(max_uses=None)
    CouponCodeFactory(offer=shared.offer)
    granted(CustomerFactory(), "email")
    campaign = sending_campaign(channels="email")
    Campaign.objects.filter(pk=campaign.pk).update(offer=shared.offer, shared_code=shared, coupon_mode="shared")
    campaign.refresh_from_db()

    campaign_launch(campaign=campaign)

    assert set(_codes(campaign).values()) == {shared.pk}
    assert not CouponCode.objects.filter(issued_at__isnull=False).exists()
