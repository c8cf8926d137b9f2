import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from customers.models import Customer
from customers.services.stores import store_save
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.force_login(user)
    return user


def _customer(store, source, zone):
    return CustomerFactory(home_store=store, time_zone=zone, time_zone_source=source)


def test_a_store_zone_edit_reaches_only_customers_whose_zone_came_from_it():
    # given a store in New York and customers whose zones came from different places
    store, other = StoreFactory(time_zone="America/New_York"), StoreFactory(time_zone="America/New_York")
    from_store = _customer(store, Customer.TimeZoneSource.STORE, "America/New_York")
    explicit = _customer(store, Customer.TimeZoneSource.EXPLICIT, "America/New_York")
    by_phone = _customer(store, Customer.TimeZoneSource.PHONE, "America/New_York")
    elsewhere = _customer(other, Customer.TimeZoneSource.STORE, "America/New_York")
    # when staff move the store to Chicago time
    store.time_zone = "America/Chicago"
    moved = store_save(store=store)
    # then only the store-sourced customer of that store follows
    assert moved == 1
    zones = dict(Customer.objects.values_list("pk", "time_zone"))
    assert zones[from_store.pk] == "America/Chicago"
    assert zones[explicit.pk] == zones[by_phone.pk] == zones[elsewhere.pk] == "America/New_York"
    # and saving again changes nobody
    assert store_save(store=store) == 0


def test_an_invalid_zone_is_refused_and_changes_nothing():
    store = StoreFactory(time_zone="America/New_York")
    customer = _customer(store, Customer.TimeZoneSource.STORE, "America/New_York")
    store.time_zone = "Mars/Base"
    with pytest.raises(ValidationError):
        store_save(store=store)
    customer.refresh_from_db()
    assert customer.time_zone == "America/New_York"


def test_editing_the_store_in_the_admin_moves_its_customers(client, marketer):
    # given a store-sourced customer of a store
    store = StoreFactory(code="mia-1", time_zone="America/New_York", state="FL")
    customer = _customer(store, Customer.TimeZoneSource.STORE, "America/New_York")
    # when the store's zone is edited in the admin
    response = client.post(
        reverse("admin:customers_store_change", args=[store.pk]),
        {
            "code": "mia-1",
            "name": store.name,
            "street": store.street,
            "city": "Pensacola",
            "postal_code": "32501",
            "state": "FL",
            "country": "US",
            "time_zone": "America/Chicago",
            "region": "",
            "is_active": "on",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "_save": "Save",
        },
    )
    # then the customer follows the store
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.time_zone == "America/Chicago"
