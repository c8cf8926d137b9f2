"""Segment rules compile to one query whose result equals a plain-Python reading of the same rules."""

import operator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.audience import segment_counts
from campaigns.segments import RuleError, rules_validate, segment_customers
from customers.models import ConsentState, Customer, Purchase
from customers.normalization import address_hmac
from tests.factories import CustomerFactory, StoreFactory
from tests.factories.campaigns import SegmentFactory
from tests.factories.loyalty import LoyaltyAccountFactory, ProgrammeFactory, TierFactory

pytestmark = pytest.mark.django_db

NAMES = ["Ann", "ann", "Bob", "", "Anna"]
ATTR_KEYS = ["size", "vip"]
ATTR_VALUES = ["42", "43", 1, 2]
REGIONS = ["North", "South"]
CHANNELS = ["email", "sms", "push"]
STATUSES = ["none", "pending", "granted", "withdrawn"]
DAYS = [1, 7, 30, 365]
TIER_RANKS = [1, 2]
OPS = {"eq": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}

purchase_st = st.fixed_dictionaries(
    {
        "days_ago": st.sampled_from([0.5, 3, 10, 45, 500]),
        "amount": st.sampled_from([Decimal("0.00"), Decimal("9.99"), Decimal("25.00"), Decimal("120.50")]),
        "channel": st.sampled_from(["online", "store"]),
    }
)
customer_st = st.fixed_dictionaries(
    {
        "first_name": st.sampled_from(NAMES),
        "has_email": st.booleans(),
        "has_phone": st.booleans(),
        "store": st.sampled_from([None, 0, 1]),
        "source": st.sampled_from(["web", "store", "import"]),
        "attributes": st.dictionaries(st.sampled_from(ATTR_KEYS), st.sampled_from(ATTR_VALUES), max_size=2),
        "consent": st.fixed_dictionaries({c: st.sampled_from(STATUSES) for c in CHANNELS}),
        "purchases": st.lists(purchase_st, max_size=4),
        "erased": st.sampled_from([False, False, False, True]),
        "loyalty": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "balance": st.sampled_from([0, 50, 500]),
                    "tier": st.sampled_from([None, 0, 1]),
                    "active": st.sampled_from([True, True, False]),
                }
            ),
        ),
    }
)
population_st = st.lists(customer_st, min_size=0, max_size=10)

leaf_st = st.one_of(
    st.builds(
        lambda field, op, value: {"type": "profile", "field": field, "op": op, "value": value},
        st.sampled_from(["first_name", "email"]),
        st.sampled_from(["eq", "neq", "contains", "starts_with", "is_set", "is_not_set"]),
        st.sampled_from(["ann", "Bob", "an", "example"]),
    ),
    st.builds(
        lambda key, op, value: {"type": "attribute", "key": key, "op": op, "value": value},
        st.sampled_from(ATTR_KEYS),
        st.sampled_from(["eq", "neq", "is_set", "is_not_set"]),
        st.sampled_from(ATTR_VALUES),
    ),
    st.builds(
        lambda kind, op, values: {"type": kind, "op": op, "values": values},
        st.just("region"),
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2),
    ),
    st.builds(
        lambda op, values: {"type": "source", "op": op, "values": values},
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(["web", "store"]), min_size=1, max_size=2),
    ),
    st.builds(
        lambda channel, op: {"type": "consent", "channel": channel, "op": op},
        st.sampled_from(CHANNELS),
        st.sampled_from(["granted", "not_granted"]),
    ),
    st.builds(
        lambda op, days, channel: {"type": "purchase", "metric": "recency", "op": op, "days": days, "channel": channel},
        st.sampled_from(["within", "not_within"]),
        st.sampled_from(DAYS),
        st.sampled_from(["any", "online", "store"]),
    ),
    st.builds(
        lambda metric, op, value, days, channel: {
            "type": "purchase",
            "metric": metric,
            "op": op,
            "value": value,
            "days": days,
            "channel": channel,
        },
        st.sampled_from(["count", "spend"]),
        st.sampled_from(list(OPS)),
        st.sampled_from([0, 1, 2, 25, 130]),
        st.sampled_from([None, *DAYS]),
        st.sampled_from(["any", "online", "store"]),
    ),
)
loyalty_leaf_st = st.one_of(
    st.builds(lambda op: {"type": "loyalty", "field": "enrolled", "op": op}, st.sampled_from(["yes", "no"])),
    st.builds(
        lambda field, op, value: {"type": "loyalty", "field": field, "op": op, "value": value},
        st.sampled_from(["balance", "tier_rank"]),
        st.sampled_from(list(OPS)),
        st.sampled_from([0, 1, 2, 50, 100]),
    ),
    st.builds(
        lambda op, values: {"type": "loyalty", "field": "tier", "op": op, "values": values},
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from([0, 1]), min_size=1, max_size=2),
    ),
)
leaf_st = st.one_of(leaf_st, loyalty_leaf_st)
tree_st = st.recursive(
    leaf_st,
    lambda children: st.fixed_dictionaries(
        {"match": st.sampled_from(["all", "any", "none"]), "rules": st.lists(children, max_size=3)}
    ),
    max_leaves=6,
)


# --- the oracle: the same rules read in plain Python ------------------------------------------------


def oracle(tree, person, now_days=0) -> bool:
    if person["erased"]:
        return False
    return _match(tree, person)


def _match(node, p) -> bool:
    if "type" not in node:
        results = [_match(child, p) for child in node.get("rules", [])]
        match = node.get("match", "all")
        if match == "all":
            return all(results)
        if match == "any":
            return any(results)
        return not any(results)
    kind = node["type"]
    if kind == "profile":
        value = p["first_name"] if node["field"] == "first_name" else p["email"]
        op, wanted = node["op"], node["value"].lower()
        is_set = value is not None and value != ""
        if op == "is_set":
            return is_set
        if op == "is_not_set":
            return not is_set
        if value is None:
            return op == "neq"
        text = value.lower()
        return {
            "eq": text == wanted,
            "neq": text != wanted,
            "contains": wanted in text,
            "starts_with": text.startswith(wanted),
        }[op]
    if kind == "attribute":
        attrs, key = p["attributes"], node["key"]
        if node["op"] == "is_set":
            return key in attrs
        if node["op"] == "is_not_set":
            return key not in attrs
        equal = key in attrs and type(attrs[key]) is type(node["value"]) and attrs[key] == node["value"]
        return equal if node["op"] == "eq" else not equal
    if kind == "region":
        region = REGIONS[p["store"]] if p["store"] is not None else None
        inside = region is not None and region in node["values"]
        return inside if node["op"] == "in" else not inside
    if kind == "source":
        inside = p["source"] in node["values"]
        return inside if node["op"] == "in" else not inside
    if kind == "consent":
        granted = p["consent"][node["channel"]] == "granted"
        return granted if node["op"] == "granted" else not granted
    if kind == "loyalty":
        account = p["loyalty"] if p["loyalty"] and p["loyalty"]["active"] else None
        field = node["field"]
        if field == "enrolled":
            return (account is not None) == (node["op"] == "yes")
        if field == "tier":
            inside = account is not None and account["tier"] in node["indexes"]
            return inside if node["op"] == "in" else not inside
        if account is None:
            return False
        if field == "balance":
            return OPS[node["op"]](account["balance"], node["value"])
        if account["tier"] is None:
            return False
        return OPS[node["op"]](TIER_RANKS[account["tier"]], node["value"])
    purchases = [
        x
        for x in p["purchases"]
        if (node["channel"] == "any" or x["channel"] == node["channel"])
        and (node.get("days") is None or x["days_ago"] <= node["days"])
    ]
    if node["metric"] == "recency":
        return bool(purchases) if node["op"] == "within" else not purchases
    total = len(purchases) if node["metric"] == "count" else sum((x["amount"] for x in purchases), Decimal(0))
    return OPS[node["op"]](total, node["value"] if node["metric"] == "count" else Decimal(str(node["value"])))


def _build(population, now):
    stores = [
        StoreFactory(code="north", region="North"),
        StoreFactory(code="south", region="South"),
    ]
    programme = ProgrammeFactory()
    tiers = [
        TierFactory(programme=programme, name="Silver", rank=1),
        TierFactory(programme=programme, name="Gold", rank=2),
    ]
    people = {}
    for index, spec in enumerate(population):
        email = f"Person{index}@example.com" if spec["has_email"] else None
        phone = f"+1415555{index:04d}" if spec["has_phone"] else None
        customer = CustomerFactory(
            first_name=spec["first_name"],
            email=email,
            phone=phone,
            home_store=stores[spec["store"]] if spec["store"] is not None else None,
            source=spec["source"],
            attributes=spec["attributes"],
            erased_at=now if spec["erased"] else None,
        )
        for channel, status in spec["consent"].items():
            if status != "none":
                ConsentState.objects.create(customer=customer, channel=channel, status=status)
        for number, purchase in enumerate(spec["purchases"]):
            Purchase.objects.create(
                customer=customer,
                channel=purchase["channel"],
                store=stores[0] if purchase["channel"] == "store" else None,
                source="till" if purchase["channel"] == "store" else "online_shop",
                external_ref=f"R{index}-{number}",
                amount=purchase["amount"],
                occurred_at=now - timedelta(days=purchase["days_ago"]),
            )
        if spec["loyalty"] is not None:
            LoyaltyAccountFactory(
                customer=customer,
                programme=programme,
                points_balance=spec["loyalty"]["balance"],
                tier=tiers[spec["loyalty"]["tier"]] if spec["loyalty"]["tier"] is not None else None,
                status="active" if spec["loyalty"]["active"] else "closed",
            )
        people[customer.pk] = {**spec, "email": email}
    return people, tiers


def _with_tier_ids(node, tiers):
    """The strategy names tiers by index; the rules take their database ids."""
    if "rules" in node:
        return {**node, "rules": [_with_tier_ids(child, tiers) for child in node["rules"]]}
    if node.get("type") == "loyalty" and node["field"] == "tier":
        return {**node, "values": [tiers[i].pk for i in node["values"]], "indexes": node["values"]}
    return node


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(population=population_st, trees=st.lists(tree_st, min_size=1, max_size=4))
def test_segment_matches_python_oracle(db, population, trees):
    now = timezone.now()
    with transaction.atomic():
        people, tiers = _build(population, now)
        for tree in trees:
            tree = _with_tier_ids(tree, tiers)
            rules_validate(tree)
            got = set(segment_customers(tree, now=now).values_list("pk", flat=True))
            expected = {pk for pk, person in people.items() if oracle(tree, person)}
            assert got == expected, tree
        transaction.set_rollback(True)


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
