import pytest

from customers.models import Customer, Source
from customers.normalization import address_hmac
from customers.services import customer_capture
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


def test_time_zone_comes_from_the_home_store_first():
    store = StoreFactory(code="la", time_zone="America/Los_Angeles")
    result = customer_capture(phone="+442079460958", source=Source.STORE, store=store)
    assert result.customer.time_zone == "America/Los_Angeles"
    assert result.customer.time_zone_source == Customer.TimeZoneSource.STORE


def test_time_zone_falls_back_to_the_phone_country():
    result = customer_capture(phone="+442079460958", source=Source.WEB)
    assert result.customer.time_zone == "Europe/London"
    assert result.customer.time_zone_source == Customer.TimeZoneSource.PHONE


def test_an_explicit_time_zone_wins_and_survives_later_captures():
    store = StoreFactory(code="ny", time_zone="America/New_York")
    customer_capture(email="tz@example.com", source=Source.WEB, time_zone="Europe/Paris")
    result = customer_capture(email="tz@example.com", source=Source.STORE, store=store)
    assert result.customer.time_zone == "Europe/Paris"
    assert result.customer.time_zone_source == Customer.TimeZoneSource.EXPLICIT


def test_an_unknown_time_zone_is_refused_and_nothing_is_written():
    with pytest.raises(Exception, match="not a time zone"):
        customer_capture(email="tz2@example.com", source=Source.WEB, time_zone="Mars/Olympus")
    assert not Customer.objects.exists()


def test_address_hashes_follow_the_address_and_ignore_case():
    result = customer_capture(email="Hash.Me@Example.com", phone="+14155552671", source=Source.WEB)
    customer = result.customer
    assert customer.email_hmac == address_hmac("email", "hash.me@example.com")
    assert customer.phone_hmac == address_hmac("sms", "+14155552671")
    assert "hash.me" not in customer.email_hmac
