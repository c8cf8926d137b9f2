"""Segment rules: one query per count, clear refusals, and each rule meaning what it says.

``test_segment_properties.py`` compares random rule trees with a plain-Python reading of the rules;
the tests here pin the defects that comparison found, one by one.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.audience import segment_counts
from campaigns.segments import RuleError, rules_validate, segment_customers
from customers.models import ConsentState, Customer, Purchase
from customers.normalization import address_hmac
from tests.factories import CustomerFactory, StoreFactory
from tests.factories.campaigns import SegmentFactory

pytestmark = pytest.mark.django_db


def _names(tree, **kwargs) -> set[str]:
    return set(segment_customers(tree, **kwargs).values_list("first_name", flat=True))


def _population(n):
    store = StoreFactory(code=f"s{n}", region="North")
    for index in range(n):
        customer = CustomerFactory(
            phone=f"+1415666{index:04d}", home_store=store, attributes={"vip": 1}, first_name="Ann"
        )
        ConsentState.objects.create(customer=customer, channel="email", status="granted")
        Purchase.objects.create(
            customer=customer,
            channel="online",
            source="online_shop",
            external_ref=f"Q{n}-{index}",
            amount=Decimal(30),
            occurred_at=timezone.now(),
        )


RICH_TREE = {
    "match": "all",
    "rules": [
        {"type": "profile", "field": "first_name", "op": "eq", "value": "ann"},
        {"type": "attribute", "key": "vip", "op": "eq", "value": 1},
        {"type": "region", "op": "in", "values": ["North"]},
        {
            "match": "any",
            "rules": [
                {"type": "purchase", "metric": "spend", "op": "gte", "value": 10, "days": 30, "channel": "online"},
                {"type": "purchase", "metric": "count", "op": "gte", "value": 5},
                {"type": "consent", "channel": "sms", "op": "granted"},
            ],
        },
    ],
}


@pytest.mark.parametrize("n", [3, 40])
def test_segment_count_takes_one_query_whatever_the_size(n, django_assert_num_queries):
    _population(n)
    segment = SegmentFactory(rules=RICH_TREE)
    with django_assert_num_queries(1):
        counts = segment_counts(segment)
    assert counts["total"] == n
    assert counts["email"] == n
    assert counts["sms"] == 0


def test_reachable_counts_leave_out_suppressed_and_addressless():
    granted = CustomerFactory(phone="+14155550100")
    suppressed = CustomerFactory()
    no_email = CustomerFactory(email=None)
    for customer in (granted, suppressed, no_email):
        ConsentState.objects.create(customer=customer, channel="email", status="granted")
        ConsentState.objects.create(customer=customer, channel="sms", status="granted")
    from customers.models import Suppression

    Suppression.objects.create(channel="email", address_hmac=address_hmac("email", suppressed.email), reason="manual")
    counts = segment_counts(SegmentFactory(rules={}))
    assert counts == {"total": 3, "email": 1, "sms": 1, "push": 0}


def test_static_segment_counts_its_members():
    from campaigns.models import Segment, SegmentMember

    members = CustomerFactory.create_batch(3)
    CustomerFactory()
    segment = SegmentFactory(kind=Segment.Kind.STATIC)
    SegmentMember.objects.bulk_create([SegmentMember(segment=segment, customer=c) for c in members])
    assert segment_counts(segment)["total"] == 3


@pytest.mark.parametrize(
    "tree",
    [
        {"type": "nope"},
        {"match": "maybe", "rules": []},
        {"type": "profile", "field": "password", "op": "eq", "value": "x"},
        {"type": "profile", "field": "first_name", "op": "regex", "value": "x"},
        {"type": "attribute", "key": "a__b' OR 1=1", "op": "eq", "value": "x"},
        {"type": "attribute", "key": "vip", "op": "eq", "value": {"nested": 1}},
        {"type": "region", "op": "in", "values": []},
        {"type": "region", "op": "in", "values": [None]},
        {"type": "region", "op": "in", "values": [5]},
        {"type": "store", "op": "in", "values": [True]},
        {"type": "store", "op": "in", "values": [2.5]},
        {"type": "store", "op": "in", "values": ["2a"]},
        {"type": "loyalty", "field": "tier", "op": "in", "values": [1.5]},
        {"type": "attribute", "key": "vip", "op": "eq", "value": float("inf")},
        {"type": "source", "op": "in", "values": ["carrier-pigeon"]},
        {"type": "consent", "channel": "fax", "op": "granted"},
        {"type": "purchase", "metric": "recency", "op": "within"},
        {"type": "purchase", "metric": "count", "op": "gte", "value": -1},
        {"type": "purchase", "metric": "spend", "op": "gte", "value": "NaN"},
        {
            "match": "all",
            "rules": [
                {
                    "match": "all",
                    "rules": [
                        {
                            "match": "all",
                            "rules": [
                                {
                                    "match": "all",
                                    "rules": [
                                        {
                                            "match": "all",
                                            "rules": [{"match": "all", "rules": [{"match": "all", "rules": []}]}],
                                        }
                                    ],
                                }
                            ],
                        }
                    ],
                }
            ],
        },
    ],
)
def test_bad_rules_are_refused_with_a_message(tree):
    with pytest.raises(RuleError):
        rules_validate(tree)


def test_merged_profiles_are_never_in_a_segment():
    survivor = CustomerFactory()
    CustomerFactory(merged_into=survivor)
    assert list(segment_customers({})) == [survivor]
    assert Customer.objects.count() == 2


@pytest.mark.parametrize("key", ["7", "07", "-1", "1_000"])
def test_a_digits_only_attribute_key_is_an_object_key_not_an_array_index(key):
    # given customers with and without the key, one holding a different value
    CustomerFactory(first_name="match", attributes={key: "x"})
    CustomerFactory(first_name="other", attributes={key: "y"})
    CustomerFactory(first_name="without", attributes={"size": "x"})
    # when the key is compared, then it is read as the object key it is
    assert _names({"type": "attribute", "key": key, "op": "eq", "value": "x"}) == {"match"}
    assert _names({"type": "attribute", "key": key, "op": "neq", "value": "x"}) == {"other", "without"}
    assert _names({"type": "attribute", "key": key, "op": "is_set"}) == {"match", "other"}


def test_attribute_equality_compares_json_types_as_well_as_values():
    # given JSON values that only look like the rule's value
    CustomerFactory(first_name="text", attributes={"vip": "1"})
    CustomerFactory(first_name="number", attributes={"vip": 1})
    CustomerFactory(first_name="decimal", attributes={"vip": 1.0})
    CustomerFactory(first_name="boolean", attributes={"vip": True})
    CustomerFactory(first_name="true-text", attributes={"vip": "true"})
    CustomerFactory(first_name="null", attributes={"vip": None})
    CustomerFactory(first_name="null-text", attributes={"vip": "null"})
    CustomerFactory(first_name="array", attributes={"vip": [1]})
    # then a number equals numbers only, text equals the same text only, and true/null/arrays equal nothing
    assert _names({"type": "attribute", "key": "vip", "op": "eq", "value": 1}) == {"number", "decimal"}
    assert _names({"type": "attribute", "key": "vip", "op": "eq", "value": "true"}) == {"true-text"}
    assert _names({"type": "attribute", "key": "vip", "op": "eq", "value": "null"}) == {"null-text"}
    assert _names({"type": "attribute", "key": "vip", "op": "eq", "value": "[1]"}) == set()
    assert "boolean" in _names({"type": "attribute", "key": "vip", "op": "neq", "value": 1})


def test_a_non_finite_attribute_value_is_refused():
    with pytest.raises(RuleError):
        rules_validate({"type": "attribute", "key": "vip", "op": "eq", "value": float("nan")})


def test_a_negated_region_rule_keeps_customers_without_a_home_store_whatever_its_siblings():
    # given a customer in the North, one in the South and one without a home store
    north = StoreFactory(code="north", region="North")
    south = StoreFactory(code="south", region="South")
    CustomerFactory(first_name="Ann", home_store=north)
    CustomerFactory(first_name="Sue", home_store=south)
    CustomerFactory(first_name="Nia", home_store=None)
    north_ann = {
        "match": "all",
        "rules": [
            {"type": "profile", "field": "first_name", "op": "eq", "value": "Ann"},
            {"type": "region", "op": "in", "values": ["North"]},
        ],
    }
    # when a sibling group already needs the store (the join), then not_in and a none group still count Nia
    for negated in (
        {"type": "region", "op": "not_in", "values": ["North"]},
        {"match": "none", "rules": [{"type": "region", "op": "in", "values": ["North"]}]},
    ):
        assert _names({"match": "any", "rules": [north_ann, negated]}) == {"Ann", "Sue", "Nia"}
        assert _names(negated) == {"Sue", "Nia"}


@pytest.mark.parametrize(("op", "value", "expected"), [("eq", "0.30", True), ("lte", "0.3", True), ("gt", 0.3, False)])
def test_spend_is_summed_in_exact_cents(op, value, expected):
    # given purchases whose amounts have no exact binary fraction
    customer = CustomerFactory(first_name="Ann")
    for number, amount in enumerate(("0.10", "0.20")):
        Purchase.objects.create(
            customer=customer,
            channel="online",
            source="online_shop",
            external_ref=f"C-{number}",
            amount=Decimal(amount),
            occurred_at=timezone.now(),
        )
    # when spend is compared with their total, then it is the exact sum
    rule = {"type": "purchase", "metric": "spend", "op": op, "value": value}
    assert (_names(rule) == {"Ann"}) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "émile", {"ÉMILE"}),
        ("neq", "émile", {"Zoë", "Ann"}),
        ("contains", "ZOË", {"Zoë"}),
        ("starts_with", "é", {"ÉMILE"}),
        ("eq", "ann", {"Ann"}),
        ("contains", "%", set()),
    ],
)
def test_case_insensitive_profile_rules_fold_accented_letters_too(op, value, expected):
    # given names whose case differs only in letters outside ASCII
    for name in ("ÉMILE", "Zoë", "Ann"):
        CustomerFactory(first_name=name)
    # when compared case-insensitively, then accented capitals fold like plain ones (SQLite's LIKE does not)
    assert _names({"type": "profile", "field": "first_name", "op": op, "value": value}) == expected


def test_a_missing_address_is_not_equal_to_any_address_and_survives_a_none_group():
    # given customers without an email address (NULL or empty) and one with
    CustomerFactory(first_name="none", email=None)
    CustomerFactory(first_name="empty", email="")
    CustomerFactory(first_name="ann", email="Ann@Example.com")
    # then "not equal" and a none group both keep the ones without
    contains_at = {"type": "profile", "field": "email", "op": "contains", "value": "@"}
    assert _names({"type": "profile", "field": "email", "op": "neq", "value": "ann@example.com"}) == {"none", "empty"}
    assert _names({"match": "none", "rules": [contains_at]}) == {"none", "empty"}


def test_ids_may_be_given_as_digits():
    # given a customer at a store, when the rule names the store by its id as text, then it matches
    store = StoreFactory(code="digits")
    CustomerFactory(first_name="Ann", home_store=store)
    assert _names({"type": "store", "op": "in", "values": [str(store.pk)]}) == {"Ann"}


# --- segment_save -------------------------------------------------------------------------------


def test_segment_save_records_creation_and_only_the_changed_fields():
    from campaigns.models import AuditEvent, Segment
    from campaigns.services.segments import segment_save
    from tests.factories import UserFactory

    user = UserFactory()
    segment = Segment(name="Lapsed", rules={"type": "consent", "channel": "email", "op": "granted"})
    segment_save(segment=segment, actor=user)
    assert Segment.objects.get(pk=segment.pk).created_by == user
    created = AuditEvent.objects.get(subject_type="segment", subject_id=segment.pk)
    assert (created.action, created.actor) == ("created", user)
    segment.description = "Nobody bought lately"
    segment_save(segment=segment, actor=user)
    changed = AuditEvent.objects.filter(subject_type="segment", subject_id=segment.pk).latest("id")
    assert changed.action == "changed"
    assert changed.changes == {"description": "Nobody bought lately"}
    segment_save(segment=segment, actor=user)
    assert AuditEvent.objects.filter(subject_type="segment", subject_id=segment.pk).count() == 2


@pytest.mark.parametrize("typed", ["1e3", "1E+3", "NaN", "Infinity", "1,000", " 12.5.0"])
def test_a_spend_amount_typed_in_any_notation_but_plain_digits_is_refused(typed):
    rule = {"type": "purchase", "metric": "spend", "op": "gte", "value": typed}
    with pytest.raises(RuleError, match="plain digits"):
        rules_validate(rule)


def test_a_spend_amount_in_plain_digits_is_read(db):
    rule = {"type": "purchase", "metric": "spend", "op": "gte", "value": "49.90"}
    rules_validate(rule)
    for name, amount in (("Under", "49.89"), ("Exactly", "49.90")):
        Purchase.objects.create(customer=CustomerFactory(first_name=name), channel="online", source="online_shop",
                                external_ref=name, amount=Decimal(amount), occurred_at=timezone.now())

    assert _names(rule) == {"Exactly"}


def test_a_purchase_window_may_start_on_a_date_instead_of_a_number_of_days():
    # given one purchase on the day before the window and one on its first day, in the site's time zone
    start = datetime.combine(date(2026, 1, 31), time.min, tzinfo=timezone.get_default_timezone())
    for name, when in (("Before", start - timedelta(seconds=1)), ("On", start)):
        Purchase.objects.create(customer=CustomerFactory(first_name=name), channel="online", source="online_shop",
                                external_ref=name, amount=Decimal(5), occurred_at=when)
    since = {"type": "purchase", "metric": "recency", "op": "within", "since": "2026-01-31"}
    # then
    assert _names(since) == {"On"}
    assert _names({**since, "op": "not_within"}) == {"Before"}
    assert _names({"type": "purchase", "metric": "count", "op": "eq", "value": 1, "since": "2026-01-31"}) == {"On"}
    for bad in ("31/01/2026", "2026-02-30", 20260131):
        with pytest.raises(RuleError, match="since is a date written as YYYY-MM-DD"):
            rules_validate({**since, "since": bad})
    with pytest.raises(RuleError, match="days or a date, not both"):
        rules_validate({**since, "days": 30})
