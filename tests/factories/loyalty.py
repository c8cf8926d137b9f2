from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from loyalty.cards import card_number_generate
from loyalty.models import BonusWindow, CouponCode, LoyaltyAccount, Offer, Programme, Tier
from tests.factories.customers import CustomerFactory


class ProgrammeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Programme
        django_get_or_create = ("name",)

    name = "Tandem Rewards"
    benefit_line = "1 point per $1; 500 points = $5 off."
    points_per_unit = Decimal("1")
    point_value = Decimal("0.01")


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    programme = factory.SubFactory(ProgrammeFactory)
    name = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n)
    threshold_points = 0
    multiplier = Decimal("1")


class LoyaltyAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoyaltyAccount

    customer = factory.SubFactory(CustomerFactory)
    programme = factory.SubFactory(ProgrammeFactory)
    card_number = factory.LazyFunction(card_number_generate)


class BonusWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BonusWindow
        skip_postgeneration_save = True

    programme = factory.SubFactory(ProgrammeFactory)
    name = factory.Sequence(lambda n: f"Double points {n}")
    kind = BonusWindow.Kind.MULTIPLIER
    multiplier = Decimal("2")
    starts_on = factory.LazyFunction(lambda: (timezone.now() - timedelta(days=30)).date())
    ends_on = factory.LazyFunction(lambda: (timezone.now() + timedelta(days=30)).date())

    @factory.post_generation
    def stores(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.stores.set(extracted)


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer

    programme = factory.SubFactory(ProgrammeFactory)
    name = factory.Sequence(lambda n: f"Offer {n}")
    kind = Offer.Kind.AMOUNT_OFF
    amount_off = Decimal("5.00")
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))


class CouponCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CouponCode

    offer = factory.SubFactory(OfferFactory)
    code = factory.Sequence(lambda n: f"CODE{n:06d}".replace("0", "Z").replace("1", "Y"))
    max_uses = 1
