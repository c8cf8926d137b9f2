import hashlib
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from customers.models import Customer, DisclosureText, ProductCategory, Purchase, Source, Store, StoreMembership
from customers.normalization import address_hmac
from customers.roles import CLERK, MARKETING, roles_ensure

PASSWORD = "correct horse battery staple"


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"store-{n}")
    name = factory.Sequence(lambda n: f"Store {n}")
    street = "1 Main Street"
    city = "Springfield"
    postal_code = "12345"
    state = "NY"
    country = "US"
    time_zone = "America/New_York"
    region = "North-East"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@staff.example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ClerkFactory(UserFactory):
    """A clerk at ``store`` (a new store unless given)."""

    @factory.post_generation
    def store(obj, create, extracted, **kwargs):
        if not create:
            return
        store = extracted or StoreFactory()
        StoreMembership.objects.create(user=obj, store=store, role=StoreMembership.Role.CLERK)
        roles_ensure()
        obj.groups.add(Group.objects.get(name=CLERK))


class MarketingUserFactory(UserFactory):
    is_staff = True

    @factory.post_generation
    def marketing_group(obj, create, extracted, **kwargs):
        if create:
            groups = roles_ensure()
            obj.groups.add(groups[MARKETING])


class DisclosureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DisclosureText

    channel = "email"
    locale = "en"
    version = factory.Sequence(lambda n: n + 1)
    text = factory.LazyAttribute(lambda o: f"I agree to receive {o.channel} marketing (v{o.version}).")
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.text.encode()).hexdigest())


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = None
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    source = Source.WEB
    email_hmac = factory.LazyAttribute(lambda o: address_hmac("email", o.email) if o.email else "")
    phone_hmac = factory.LazyAttribute(lambda o: address_hmac("sms", o.phone) if o.phone else "")


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purchase
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    channel = Purchase.Channel.ONLINE
    source = Purchase.Source.ONLINE_SHOP
    external_ref = factory.Sequence(lambda n: f"ORDER-{n}")
    amount = Decimal("25.00")
    currency = "USD"
    occurred_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def categories(self, create, extracted, **kwargs):
        if create and extracted:
            self.categories.add(*extracted)


class ProductCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductCategory

    name = factory.Sequence(lambda n: f"Category {n}")
