"""purchase_record: once per (source, reference), refusing amounts no till could have rung up."""

from decimal import Decimal

import pytest

from customers.exceptions import CustomerError
from customers.models import Purchase, PurchaseCategory
from customers.selectors import customer_export_data, customer_timeline
from customers.services import purchase_record
from tests.factories import CustomerFactory
from tests.factories.customers import ProductCategoryFactory, PurchaseFactory

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


# --- product categories --------------------------------------------------------------------------


def test_categories_by_name_ignore_case_and_spaces_and_repeats():
    shampoo, coffee = ProductCategoryFactory(name="Shampoo"), ProductCategoryFactory(name="Coffee beans")
    ProductCategoryFactory(name="Vitamins")

    purchase, _ = record(categories=[" shampoo", "COFFEE BEANS", "Shampoo"])

    assert list(purchase.categories.all()) == [coffee, shampoo]


def test_categories_as_objects_and_an_inactive_one_by_name():
    shampoo = ProductCategoryFactory(name="Shampoo")
    retired = ProductCategoryFactory(name="Retired", is_active=False)  # an older receipt may still name it

    purchase, _ = record(categories=[shampoo, "retired"])

    assert set(purchase.categories.all()) == {shampoo, retired}


@pytest.mark.parametrize(
    ("categories", "message"),
    [
        (["Shampoo", "Soap", "Candles"], "Unknown product categories: 'Candles', 'Soap'"),
        (["soap"], "Unknown product category: 'soap'"),
        ([""], "by its name"),
        ([12], "by its name"),
        ([f"Name {n}" for n in range(51)], "at most 50"),
    ],
)
def test_unknown_categories_are_refused_and_nothing_is_written(categories, message):
    ProductCategoryFactory(name="Shampoo")
    with pytest.raises(CustomerError, match=message):
        record(customer=CustomerFactory(), categories=categories)
    assert not Purchase.objects.exists()
    assert not PurchaseCategory.objects.exists()


def test_a_repeat_naming_other_categories_is_refused_one_naming_none_is_a_repeat():
    shampoo, soap = ProductCategoryFactory(name="Shampoo"), ProductCategoryFactory(name="Soap")
    customer = CustomerFactory()
    first, _ = record(customer=customer, categories=["Shampoo"])

    assert record(customer=customer, categories=["shampoo"]) == (first, False)
    assert record(customer=customer) == (first, False)
    with pytest.raises(CustomerError, match="other product categories"):
        record(customer=customer, categories=["Shampoo", "Soap"])
    assert list(first.categories.all()) == [shampoo]
    assert soap.purchases.count() == 0


def test_the_timeline_and_the_export_show_what_was_bought(django_assert_max_num_queries):
    customer = CustomerFactory()
    shampoo, coffee = ProductCategoryFactory(name="Shampoo"), ProductCategoryFactory(name="Coffee <beans>")
    for n in range(3):
        PurchaseFactory(customer=customer, external_ref=f"R-{n}", categories=[shampoo, coffee])
    PurchaseFactory(customer=customer, external_ref="R-none")

    with django_assert_max_num_queries(6):  # not one query per purchase
        entries = [entry for entry in customer_timeline(customer) if entry.kind == "purchase"]

    assert sorted(entry.details["Categories"] for entry in entries) == ["", *["Coffee <beans>, Shampoo"] * 3]
    exported = {row["reference"]: row["categories"] for row in customer_export_data(customer)["purchases"]}
    assert exported["R-0"] == ["Coffee <beans>", "Shampoo"]
    assert exported["R-none"] == []
