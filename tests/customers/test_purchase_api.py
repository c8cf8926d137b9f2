"""Orders sent to POST /api/v1/purchases/ with an API key: recorded once, refused whole, never consent."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from customers.models import ApiKey, ConsentEvidence, ConsentState, Customer, Purchase, Source
from customers.services.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from customers.services.profiles import customer_merge
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.customers import ProductCategoryFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/purchases/"


@pytest.fixture
def key():
    _api_key, full_key = api_key_create(name="Online shop")
    return full_key


def order(**overrides):
    body = {
        "external_ref": "W-1001",
        "amount": "59.90",
        "currency": "usd",
        "occurred_at": "2026-03-02T14:05:00+01:00",
        "channel": "online",
        "customer": {"email": "Ada@Example.com"},
    }
    body.update(overrides)
    return body


def post(client, body, key=None, url=URL, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **headers, **extra)


def nothing_written():
    return not Purchase.objects.exists() and not Customer.objects.exists()


# Authentication


def test_reverse_names_the_endpoint():
    assert reverse("api:purchase_create") == URL


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer tdk_00000000_nope", "Basic abc", "Bearer tdk_"])
def test_a_missing_or_unknown_key_is_refused_and_nothing_is_written(client, key, header):
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(URL, data=json.dumps(order()), content_type="application/json", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["message"]
    assert nothing_written()


def test_a_key_with_the_right_prefix_and_a_wrong_secret_is_refused(client, key):
    response = post(client, order(), key=key[:-4] + "AAAA")

    assert response.status_code == 401
    assert nothing_written()


def test_a_revoked_key_is_refused(client):
    api_key, full_key = api_key_create(name="Old shop")
    assert api_key_revoke(api_key=api_key) is True
    assert api_key_revoke(api_key=api_key) is False  # idempotent

    response = post(client, order(), key=full_key)

    assert response.status_code == 401
    assert nothing_written()


def test_the_secret_is_not_stored_and_last_use_is_recorded_at_most_once_a_minute(client):
    _api_key, full_key = api_key_create(name="Shop")
    row = ApiKey.objects.get()
    assert full_key not in {row.prefix, row.secret_hash, row.name}
    assert full_key.startswith(row.prefix + "_")
    assert row.last_used_at is None

    with time_machine.travel("2026-03-02 10:00:00Z", tick=False):
        assert post(client, order(occurred_at="2026-03-02T09:00:00Z"), key=full_key).status_code == 201
    first = ApiKey.objects.get().last_used_at
    with time_machine.travel("2026-03-02 10:00:30Z", tick=False):
        assert api_key_authenticate(full_key) is not None
    assert ApiKey.objects.get().last_used_at == first
    with time_machine.travel("2026-03-02 10:05:00Z", tick=False):
        assert api_key_authenticate(full_key) is not None
    assert ApiKey.objects.get().last_used_at == first + timedelta(minutes=5)


def test_other_methods_are_refused_and_no_cookie_is_set(client, key):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    created = post(client, order(), key=key)
    assert created.status_code == 201
    assert not created.cookies


def test_the_endpoint_needs_no_csrf_token(key):
    from django.test import Client

    response = post(Client(enforce_csrf_checks=True), order(), key=key)

    assert response.status_code == 201


# Recording


def test_an_order_of_an_unknown_buyer_makes_a_profile_with_source_api_and_no_consent(client, key):
    category = ProductCategoryFactory(name="Shoes")

    response = post(client, order(categories=["shoes"], discount_amount=5), key=key)

    assert response.status_code == 201
    body = response.json()
    purchase = Purchase.objects.get()
    assert body["id"] == str(purchase.public_id)
    assert body["created"] is True
    assert body["customer"]["created"] is True
    customer = purchase.customer
    assert str(customer.public_id) == body["customer"]["id"]
    assert customer.email == "Ada@example.com"
    assert customer.source == Source.API
    assert not ConsentState.objects.exists()
    assert not ConsentEvidence.objects.exists()
    assert purchase.source == Purchase.Source.API
    assert purchase.channel == "online"
    assert purchase.amount == Decimal("59.90")
    assert purchase.discount_amount == Decimal("5.00")
    assert purchase.currency == "USD"
    assert purchase.occurred_at == datetime(2026, 3, 2, 13, 5, tzinfo=UTC)
    assert list(purchase.categories.all()) == [category]


def test_a_known_buyer_is_found_by_email_ignoring_case_or_by_phone(client, key):
    known = CustomerFactory(email="ada@example.com", phone="+14155550123")

    by_email = post(client, order(external_ref="A", customer={"email": "ADA@example.com"}), key=key)
    by_phone = post(client, order(external_ref="B", customer={"phone": "+1 (415) 555-0123"}), key=key)

    assert by_email.status_code == by_phone.status_code == 201
    assert by_email.json()["customer"] == {"id": str(known.public_id), "created": False}
    assert by_phone.json()["customer"]["id"] == str(known.public_id)
    assert Customer.objects.count() == 1


def test_an_identical_repeat_answers_200_with_the_same_purchase(client, key):
    first = post(client, order(), key=key)

    again = post(client, order(), key=key)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    assert Purchase.objects.count() == 1
    assert Customer.objects.count() == 1


def test_a_repeat_with_another_amount_or_buyer_is_a_conflict_and_writes_nothing(client, key):
    post(client, order(), key=key)

    other_amount = post(client, order(amount="10.00"), key=key)
    other_buyer = post(client, order(customer={"email": "someone.else@example.com"}), key=key)

    assert other_amount.status_code == other_buyer.status_code == 409
    assert other_buyer.json()["errors"][0]["field"] == "external_ref"
    assert Purchase.objects.get().amount == Decimal("59.90")
    # The profile made for the refused repeat's buyer was rolled back with it.
    assert list(Customer.objects.values_list("email", flat=True)) == ["Ada@example.com"]


def test_an_order_of_a_merged_away_profile_lands_on_the_survivor(client, key):
    survivor = CustomerFactory(email="ada@example.com")
    other = CustomerFactory(email="ada.old@example.com")
    customer_merge(survivor=survivor, other=other, user=MarketingUserFactory())

    by_id = post(client, order(external_ref="A", customer={"id": str(other.public_id)}), key=key)
    by_email = post(client, order(external_ref="B", customer={"email": "ada.old@example.com"}), key=key)

    assert by_id.status_code == by_email.status_code == 201
    assert set(Purchase.objects.values_list("customer_id", flat=True)) == {survivor.pk}


def test_an_in_store_order_names_its_store_by_code_or_id(client, key, store):
    by_code = post(client, order(external_ref="A", channel="store", store=store.code), key=key)
    by_id = post(client, order(external_ref="B", channel="store", store=store.pk), key=key)

    assert by_code.status_code == by_id.status_code == 201
    assert set(Purchase.objects.values_list("store_id", "channel")) == {(store.pk, "store")}


def test_amounts_sent_as_json_numbers_stay_exact(client, key):
    response = post(
        client,
        '{"external_ref": "N", "amount": 0.1, "currency": "EUR", "occurred_at": '
        '"2026-03-02T10:00:00Z", "channel": "online", "customer": {"email": "n@example.com"}}',
        key=key,
    )

    assert response.status_code == 201
    assert Purchase.objects.get().amount == Decimal("0.10")


def test_a_numeric_order_number_is_read_as_text(client, key):
    response = post(client, order(external_ref=1001), key=key)

    assert response.status_code == 201
    assert Purchase.objects.get().external_ref == "1001"


# Refusals


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"amount": None}, {"amount"}),
        ({"amount": "1e3"}, {"amount"}),
        ({"amount": "-5"}, {"amount"}),
        ({"amount": "1.234"}, {"amount"}),
        ({"discount_amount": "100.00"}, {"discount_amount"}),
        ({"currency": "dollars"}, {"currency"}),
        ({"occurred_at": "2026-03-02 14:05"}, {"occurred_at"}),
        ({"occurred_at": "yesterday"}, {"occurred_at"}),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, {"occurred_at"}),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, {"occurred_at"}),
        ({"channel": "phone"}, {"channel"}),
        ({"channel": "store"}, {"store"}),
        ({"channel": "store", "store": "nowhere"}, {"store"}),
        ({"store": 10**30}, {"store"}),
        ({"categories": ["Unknown thing"]}, {"categories"}),
        ({"categories": "Shoes"}, {"categories"}),
        ({"customer": {}}, {"customer"}),
        ({"customer": {"email": "not-an-email"}}, {"customer.email"}),
        ({"customer": {"phone": "12"}}, {"customer.phone"}),
        ({"customer": {"id": "nope"}}, {"customer.id"}),
        ({"customer": {"id": "7f1b0e52-2f34-4b3c-9d0e-000000000000"}}, {"customer.id"}),
        ({"external_ref": ""}, {"external_ref"}),
        ({"external_ref": "x" * 101}, {"external_ref"}),
        ({"ammount": "1.00"}, {"ammount"}),
        ({"amount": "x", "currency": "", "channel": None}, {"amount", "currency", "channel"}),
    ],
)
def test_bad_orders_are_refused_with_every_field_error_and_nothing_is_written(client, key, overrides, fields):
    response = post(client, order(**overrides), key=key)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {error["field"] for error in errors} == fields
    assert all(error["message"] for error in errors)
    assert nothing_written()


@pytest.mark.parametrize("body", ["{not json", "[]", '"text"', b"\xff\xfe", '{"amount": NaN}'])
def test_a_body_that_is_not_an_order_object_is_refused(client, key, body):
    response = post(client, body, key=key)

    assert response.status_code == 400
    assert nothing_written()


def test_a_body_over_64_kb_is_refused_without_being_read(client, key):
    response = post(client, order(external_ref="x" * (65 * 1024)), key=key)

    assert response.status_code == 413
    assert nothing_written()


def test_an_erased_customer_cannot_be_named_by_id(client, key):
    erased = CustomerFactory()
    Customer.objects.filter(pk=erased.pk).update(erased_at=timezone.now())

    response = post(client, order(customer={"id": str(erased.public_id)}), key=key)

    assert response.status_code == 400
    assert not Purchase.objects.exists()


# Cost


def test_one_order_costs_a_bounded_number_of_queries(client, key, store, django_assert_max_num_queries):
    ProductCategoryFactory(name="Shoes")
    CustomerFactory(email="known@example.com")
    body = order(channel="store", store=store.code, categories=["Shoes"], customer={"email": "known@example.com"})

    with django_assert_max_num_queries(16):
        assert post(client, body, key=key).status_code == 201
    with django_assert_max_num_queries(16):
        assert (
            post(client, order(external_ref="NEW", customer={"email": "new@example.com"}), key=key).status_code == 201
        )
    with django_assert_max_num_queries(14):
        assert post(client, body, key=key).status_code == 200


# Batch


def test_a_batch_answers_each_order_on_its_own(client, key):
    orders = [
        order(external_ref="B-1"),
        order(external_ref="B-2", amount="oops"),
        order(external_ref="B-1"),
        order(external_ref="B-1", amount="1.00"),
    ]

    response = post(client, {"orders": orders}, key=key, url="/api/v1/purchases/batch/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] for result in results] == ["created", "invalid", "repeat", "conflict"]
    assert results[0]["id"] == results[2]["id"]
    assert results[1]["errors"][0]["field"] == "amount"
    assert Purchase.objects.count() == 1


def test_a_batch_of_more_than_500_orders_is_refused_whole(client, key):
    orders = [order(external_ref=f"B-{n}") for n in range(501)]

    response = post(client, {"orders": orders}, key=key, url="/api/v1/purchases/batch/")

    assert response.status_code == 400
    assert nothing_written()


def test_a_batch_body_over_2_mb_is_refused(client, key):
    orders = [order(external_ref=f"B-{n}", currency="x" * 5000) for n in range(450)]

    response = post(client, {"orders": orders}, key=key, url="/api/v1/purchases/batch/")

    assert response.status_code == 413
    assert nothing_written()


def test_a_batch_costs_a_bounded_number_of_queries_per_order(client, key, django_assert_max_num_queries):
    orders = [order(external_ref=f"B-{n}", customer={"email": f"b{n}@example.com"}) for n in range(10)]

    with django_assert_max_num_queries(2 + 16 * len(orders)):
        response = post(client, {"orders": orders}, key=key, url="/api/v1/purchases/batch/")

    assert [result["status"] for result in response.json()["results"]] == ["created"] * 10


# Concurrency


@pytest.mark.postgres
def test_the_same_new_order_sent_twice_at_once_is_one_purchase_of_one_new_profile(transactional_db):
    from django.test import Client

    from tests.concurrency import errors, race

    _api_key, full_key = api_key_create(name="Shop")
    for i in range(5):
        body = order(external_ref=f"RACE-{i}", customer={"email": f"race-{i}@example.com"})

        def send(body=body):
            response = post(Client(raise_request_exception=False), body, key=full_key)
            return response.status_code, response.json().get("id")

        outcomes = race(send, send)

        assert all(o.ok for o in outcomes), errors(outcomes)
        statuses = sorted(o.value[0] for o in outcomes)
        assert statuses == [200, 201], (i, statuses)
        assert outcomes[0].value[1] == outcomes[1].value[1]
        assert Purchase.objects.filter(external_ref=f"RACE-{i}").count() == 1
        assert Customer.objects.filter(email=f"race-{i}@example.com").count() == 1
