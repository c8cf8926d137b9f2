"""purchase_record: once per (source, reference), refusing amounts no till could have rung up."""

from decimal import Decimal

import pytest

from customers.exceptions import CustomerError
from customers.models import Purchase
from customers.services import purchase_record
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def record(**overrides):
    kwargs = {
        "customer": overrides.pop("customer", None),
        "channel": "online",
        "source": "online_shop",
        "external_ref": "ORDER-1",
        "amount": "49.90",
    }
    kwargs.update(overrides)
    return purchase_record(**kwargs)


def test_the_same_reference_twice_is_recorded_once():
    customer = CustomerFactory()
    first, created = record(customer=customer)
    again, created_again = record(customer=customer)
    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert Purchase.objects.count() == 1
    assert first.amount == Decimal("49.90")


def test_the_same_reference_from_another_source_is_another_purchase(store):
    record()
    record(source="till", channel="store", store=store)
    assert Purchase.objects.count() == 2


def test_a_repeated_reference_with_other_details_is_refused():
    record(customer=CustomerFactory())
    with pytest.raises(CustomerError, match="already recorded"):
        record(amount="50.00")
    assert Purchase.objects.count() == 1


def test_a_visit_without_amount_is_accepted(store):
    purchase, _ = record(channel="store", source="till", store=store, amount="0")
    assert purchase.amount == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"amount": "-1.00"}, "negative"),
        ({"amount": "1000000"}, "implausibly large"),
        ({"amount": "9.999"}, "two decimals"),
        ({"amount": "NaN"}, "plain digits"),
        ({"amount": "Infinity"}, "plain digits"),
        ({"amount": "1e3"}, "no exponent"),
        ({"amount": "1,000"}, "thousands separators"),
        ({"amount": "ten"}, "number"),
        ({"discount_amount": "60"}, "discount"),
        ({"discount_amount": "-5"}, "negative"),
        ({"channel": "store"}, "store"),
        ({"channel": "catalogue"}, "channel"),
        ({"source": "fax"}, "source"),
        ({"external_ref": ""}, "receipt"),
        ({"external_ref": "X" * 101}, "receipt"),
        ({"external_ref": "A\x00B"}, "receipt"),
        ({"currency": "US"}, "currency"),
        ({"currency": "€€€"}, "currency"),
    ],
)
def test_bad_purchases_are_refused_and_nothing_is_written(overrides, message):
    with pytest.raises(CustomerError, match=message):
        record(**overrides)
    assert not Purchase.objects.exists()


def test_anonymous_in_store_purchase(store):
    purchase, _ = record(channel="store", source="till", store=store, currency="usd")
    assert (purchase.customer, purchase.store, purchase.currency) == (None, store, "USD")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_receipt_sent_concurrently_is_recorded_once():
    import threading

    from django.db import connection

    threads_count = 8
    barrier = threading.Barrier(threads_count)
    errors, created_flags = [], []

    def send():
        try:
            barrier.wait(timeout=10)
            _purchase, created = record(external_ref="RACE-1")
            created_flags.append(created)
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(created_flags) == [False] * (threads_count - 1) + [True]
    assert Purchase.objects.filter(external_ref="RACE-1").count() == 1
