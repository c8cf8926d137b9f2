"""Loyalty in messages: balance and tier placeholders, the campaign's offer and its coupon codes."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.audience import campaign_forecast
from campaigns.models import Campaign
from campaigns.personalisation import SAMPLE_UNIQUE_CODE
from campaigns.selectors import variant_preview
from campaigns.services.campaigns import campaign_problems
from tests.factories import CustomerFactory
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory, SegmentFactory, SmsVariantFactory
from tests.factories.loyalty import CouponCodeFactory, LoyaltyAccountFactory, OfferFactory, TierFactory

pytestmark = pytest.mark.django_db

BODY = "<p>You have {{ points_balance }} points as a {{ tier }} member. Code: {{ coupon_code }}</p>"


def test_loyalty_placeholders_for_a_member_and_a_non_member():
    gold = TierFactory(name="Gold")
    member = CustomerFactory()
    LoyaltyAccountFactory(customer=member, programme=gold.programme, points_balance=1250, tier=gold)
    variant = EmailVariantFactory(html_body=BODY)
    assert "1,250 points as a Gold member" in variant_preview(variant=variant, customer=member).rendered.html
    outsider = variant_preview(variant=variant, customer=CustomerFactory()).rendered.html
    assert "0 points as a member member" in outsider


def test_shared_code_is_shown_and_checked():
    offer = OfferFactory()
    code = CouponCodeFactory(offer=offer, code="SPRING25", max_uses=None)
    campaign = CampaignFactory(include=[SegmentFactory()], offer=offer, coupon_mode="shared", shared_code=code)
    variant = EmailVariantFactory(message=campaign.message, html_body=BODY)
    campaign.full_clean()
    html = variant_preview(variant=variant, customer=None, campaign=campaign).rendered.html
    assert "Code: SPRING25" in html
    assert campaign_problems(campaign) == []


def test_shared_code_of_another_offer_is_refused():
    campaign = CampaignFactory.build(
        message=EmailVariantFactory().message,
        offer=OfferFactory(),
        coupon_mode="shared",
        shared_code=CouponCodeFactory(),
    )
    with pytest.raises(ValidationError) as caught:
        campaign.full_clean()
    assert "another offer" in str(caught.value)


def test_unique_codes_are_forecast_and_none_left_is_no_problem_as_launch_generates_them():
    offer = OfferFactory(code_mode="unique")
    campaign = CampaignFactory(include=[SegmentFactory()], offer=offer, coupon_mode=Campaign.CouponMode.UNIQUE)
    EmailVariantFactory(message=campaign.message, html_body=BODY)
    assert campaign_problems(campaign) == []
    assert campaign_forecast(campaign).unique_codes_available == 0
    CouponCodeFactory.create_batch(3, offer=offer)
    CouponCodeFactory(offer=offer, is_void=True)
    assert campaign_problems(campaign) == []
    assert campaign_forecast(campaign).unique_codes_available == 3
    html = variant_preview(variant=campaign.message.variants.get(), customer=None, campaign=campaign).rendered.html
    assert SAMPLE_UNIQUE_CODE in html


def test_coupon_placeholder_without_an_offer_is_a_problem():
    campaign = CampaignFactory(include=[SegmentFactory()], channels="sms")
    SmsVariantFactory(message=campaign.message, sms_body="Tandem Stores: code {{ coupon_code }}. Reply STOP to opt out")
    assert any("no offer" in problem for problem in campaign_problems(campaign))
