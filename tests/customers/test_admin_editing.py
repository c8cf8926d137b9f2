"""The editing service behind the customer change page, and the staff consent services behind its actions."""

import pytest

from customers.exceptions import ConsentError, CustomerError
from customers.models import Channel, ConsentEvidence, ConsentMethod, ConsentStatus, Customer
from customers.normalization import address_hmac
from customers.services.consent import Evidence, consent_grant, suppression_add
from customers.services.editing import (
    ProfileFieldError,
    consent_grant_by_staff,
    consent_withdraw_by_staff,
    customer_update_profile,
)
from customers.services.profiles import customer_erase, customer_merge
from tests.factories import CustomerFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return UserFactory(is_staff=True)


def test_update_normalises_and_recomputes_derived_fields(staff):
    customer = CustomerFactory(email="a@example.com", phone=None)
    update = customer_update_profile(
        customer=customer, user=staff, changes={"email": " B@Example.COM ", "phone": "+44 20 7946 0018"}
    )
    customer.refresh_from_db()
    assert update.customer.pk == customer.pk
    assert (customer.email, customer.phone) == ("B@example.com", "+442079460018")
    assert customer.email_hmac == address_hmac("email", "b@example.com")
    assert customer.phone_hmac == address_hmac("sms", "+442079460018")
    assert customer.time_zone == "Europe/London"


def test_home_store_then_explicit_time_zone(staff):
    store = StoreFactory(time_zone="America/Chicago")
    customer = CustomerFactory(phone="+14155552671")
    customer_update_profile(customer=customer, user=staff, changes={"home_store": store})
    customer.refresh_from_db()
    assert (customer.time_zone, customer.time_zone_source) == ("America/Chicago", Customer.TimeZoneSource.STORE)
    customer_update_profile(customer=customer, user=staff, changes={"time_zone": "Europe/Paris"})
    customer.refresh_from_db()
    assert (customer.time_zone, customer.time_zone_source) == ("Europe/Paris", Customer.TimeZoneSource.EXPLICIT)
    customer_update_profile(customer=customer, user=staff, changes={"time_zone": ""})
    customer.refresh_from_db()
    assert (customer.time_zone, customer.time_zone_source) == ("America/Chicago", Customer.TimeZoneSource.STORE)


def test_clearing_an_address(staff):
    customer = CustomerFactory(email="a@example.com", phone="+14155552671")
    customer_update_profile(customer=customer, user=staff, changes={"phone": "  "})
    customer.refresh_from_db()
    assert (customer.phone, customer.phone_hmac) == (None, "")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "x@localhost"}, "email"),
        ({"email": "a" * 400 + "@example.com"}, "email"),
        ({"phone": "+1 555"}, "phone"),
        ({"first_name": "x" * 101}, "first_name"),
        ({"last_name": "nul\x00"}, "last_name"),
        ({"time_zone": "Nowhere/City"}, "time_zone"),
        ({"locale": "english please"}, "locale"),
        ({"attributes": ["not", "a", "dict"]}, "attributes"),
        ({"birthday": "1990-01-01"}, "birthday"),
        ({"email": "new@example.com."}, "email"),
        ({"phone": "1-800-FLOWERS"}, "phone"),
        ({"phone": "+1 415 555 2671 x5"}, "phone"),
        ({"phone": "+1 900 555 0123"}, "phone"),
        ({"first_name": "Ann\nLee"}, "first_name"),
        ({"last_name": "\u202eeeL"}, "last_name"),
        ({"last_name": "Lee\u2069"}, "last_name"),
    ],
)
def test_bad_values_change_nothing(staff, changes, field):
    customer = CustomerFactory(email="keep@example.com", first_name="Keep")
    with pytest.raises(ProfileFieldError) as error:
        customer_update_profile(customer=customer, user=staff, changes=changes)
    assert error.value.field == field
    customer.refresh_from_db()
    assert (customer.email, customer.first_name) == ("keep@example.com", "Keep")


def test_address_of_another_profile_is_refused_case_insensitively(staff):
    CustomerFactory(email="Taken@example.com")
    customer = CustomerFactory(email="mine@example.com")
    with pytest.raises(ProfileFieldError, match="already has this email"):
        customer_update_profile(customer=customer, user=staff, changes={"email": "taken@EXAMPLE.com"})


def test_unknown_fields_and_inactive_profiles_are_refused(staff):
    customer = CustomerFactory()
    with pytest.raises(CustomerError, match="cannot be edited"):
        customer_update_profile(customer=customer, user=staff, changes={"source": "web"})
    survivor = CustomerFactory()
    customer_merge(survivor=survivor, other=customer, user=staff)
    with pytest.raises(CustomerError, match="merged or erased"):
        customer_update_profile(customer=customer, user=staff, changes={"first_name": "X"})
    customer_erase(customer=survivor, user=staff)
    with pytest.raises(CustomerError, match="merged or erased"):
        customer_update_profile(customer=survivor, user=staff, changes={"first_name": "X"})


def test_address_change_withdraws_consent_only_for_that_channel(staff):
    customer = CustomerFactory(email="old@example.com", phone="+14155552671")
    for channel in (Channel.EMAIL, Channel.SMS):
        consent_grant_by_staff(customer=customer, channel=channel, basis="Form", user=staff)
    update = customer_update_profile(customer=customer, user=staff, changes={"phone": "+14155552672"})
    assert update.withdrawn_channels == [Channel.SMS]
    states = dict(customer.consent_states.values_list("channel", "status"))
    assert states == {Channel.EMAIL: ConsentStatus.GRANTED, Channel.SMS: ConsentStatus.WITHDRAWN}
    # Re-typing the same email in another case is not a change of address.
    update = customer_update_profile(customer=customer, user=staff, changes={"email": "OLD@example.com"})
    assert update.withdrawn_channels == []


def test_staff_grant_needs_basis_and_refuses_suppressed(staff):
    customer = CustomerFactory(email="a@example.com")
    with pytest.raises(ConsentError, match="basis"):
        consent_grant_by_staff(customer=customer, channel=Channel.EMAIL, basis=" ", user=staff)
    suppression_add(channel=Channel.EMAIL, address="a@example.com", reason="hard_bounce")
    with pytest.raises(ConsentError, match="suppression"):
        consent_grant_by_staff(customer=customer, channel=Channel.EMAIL, basis="Form", user=staff)
    assert not ConsentEvidence.objects.exists()


def test_staff_withdrawal_needs_a_note(staff):
    customer = CustomerFactory()
    consent_grant(
        customer=customer,
        channel=Channel.EMAIL,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=staff, basis="Form"),
    )
    with pytest.raises(ConsentError, match="how the customer withdrew"):
        consent_withdraw_by_staff(customer=customer, channel=Channel.EMAIL, note="", user=staff)
    entry = consent_withdraw_by_staff(customer=customer, channel=Channel.EMAIL, note="Letter", user=staff)
    assert (entry.method, entry.note) == (ConsentMethod.ADMIN, "Letter")


def test_clearing_the_only_contact_is_refused(staff):
    email_only = CustomerFactory(email="only@example.com", phone=None)
    phone_only = CustomerFactory(email=None, phone="+14155552671")
    both = CustomerFactory(email="both@example.com", phone="+14155552672")
    for customer, changes in [
        (email_only, {"email": ""}),
        (email_only, {"email": " ", "phone": ""}),
        (phone_only, {"phone": None}),
        (both, {"email": "", "phone": "  "}),
    ]:
        with pytest.raises(CustomerError, match="needs an email address or a phone number"):
            customer_update_profile(customer=customer, user=staff, changes=changes)
    assert set(Customer.objects.values_list("email", "phone")) == {
        ("only@example.com", None),
        (None, "+14155552671"),
        ("both@example.com", "+14155552672"),
    }
    # Clearing one of two contacts stays allowed.
    customer_update_profile(customer=both, user=staff, changes={"email": ""})
    both.refresh_from_db()
    assert (both.email, both.phone) == (None, "+14155552672")


def test_a_local_number_is_read_in_the_home_stores_country(staff):
    london = StoreFactory(country="GB", time_zone="Europe/London")
    customer = CustomerFactory(email="a@example.com", home_store=london)
    customer_update_profile(customer=customer, user=staff, changes={"phone": "07911 123456"})
    customer.refresh_from_db()
    assert customer.phone == "+447911123456"
    # A home store set in the same edit is the one that counts.
    paris = StoreFactory(country="FR", time_zone="Europe/Paris")
    other = CustomerFactory(email="b@example.com")
    customer_update_profile(customer=other, user=staff, changes={"home_store": paris, "phone": "06 12 34 56 78"})
    other.refresh_from_db()
    assert other.phone == "+33612345678"


def test_staff_cannot_grant_sms_consent_to_a_landline(staff):
    customer = CustomerFactory(email=None, phone="+442079460018")
    with pytest.raises(ConsentError, match="this is a landline"):
        consent_grant_by_staff(customer=customer, channel=Channel.SMS, basis="Paper form", user=staff)
    assert not ConsentEvidence.objects.exists()
