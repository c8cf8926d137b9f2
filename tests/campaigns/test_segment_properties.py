"""Any segment rule tree selects, in SQL, exactly the customers a plain-Python reading of its meaning selects.

The population is built once per test from a seeded generator plus hand-picked edge cases (no home
store, blank region, NULL and empty addresses, odd attribute keys and JSON values, purchases on window
boundaries, several loyalty programmes, erased and merged profiles); hypothesis draws the rule trees.
The oracle below is written from the rule language's documentation in ``campaigns/segments.py``, never
from the compiler, and the two are compared as sets of customer ids.
"""

import operator
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.audience import segment_counts
from campaigns.segments import MAX_DEPTH, RuleError, segment_customers, segment_q
from customers.models import ConsentState, Customer, Purchase
from tests.factories import CustomerFactory, StoreFactory
from tests.factories.campaigns import SegmentFactory
from tests.factories.loyalty import LoyaltyAccountFactory, ProgrammeFactory, TierFactory

pytestmark = pytest.mark.django_db

OPS = {"eq": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
MISSING = object()  # an optional key left out of a generated rule

REGIONS = {"north": "North", "north2": "North", "south": "South", "blank": ""}
NAMES = ["Ann", "ann", "ANNA", "Bob", "", "Zoë", "ZOË", "ÉMILE", "Émile", "Straße", "50%_off", "Anne-Marie"]
PROFILE_VALUES = ["ann", "ANN", "Anna", "bob", "zoë", "émile", "ÉM", "STRAßE", "50%", "_", "%", "example"]
PROFILE_VALUES += ["@example.", "+1415"]
EMAILS = [None, "", "ann@example.com", "Bob@Example.org", "zoe+tag@example.com", "a_b%c@example.com"]
ATTRIBUTES = [
    {},
    {"size": "42"},
    {"size": 42},
    {"size": 42.0},
    {"size": 42.5},
    {"size": "42 "},
    {"size": None},
    {"size": "null"},
    {"size": True},
    {"size": [42]},
    {"size": {"eu": 42}},
    {"vip": True},
    {"vip": 1},
    {"vip": "true"},
    {"vip": 0},
    {"vip": False},
    {"7": "x"},
    {"7": 7},
    {"07": "x"},
    {"-1": "y"},
    {"1_000": "k"},
    {"a.b": "z"},
    {"a": {"b": "z"}},
    {"tags": [1, 2]},
    {"tags": "[1, 2]"},
    {"tags": "[1,2]"},
    {"size": "42", "vip": 1, "7": "x"},
    {"": "empty key"},
]
PURCHASE_DAYS_AGO = [-1, 0, 0.5, 1, 6.99, 7, 29.99, 30, 30.01, 365, 400]
AMOUNTS = [Decimal("0.00"), Decimal("0.10"), Decimal("0.20"), Decimal("9.99"), Decimal("25.00"), Decimal("120.50")]


def _person_specs(rng: random.Random) -> list[dict]:
    specs = []
    for _ in range(70):
        specs.append(
            {
                "first_name": rng.choice(NAMES),
                "last_name": rng.choice(["", "Annable", "bobson"]),
                "email": rng.choice(EMAILS),
                "phone": rng.choice([None, None, "+1415555{:04d}"]),
                "store": rng.choice([None, None, "north", "north2", "south", "blank"]),
                "source": rng.choice(["web", "store", "import", "api"]),
                "attributes": rng.choice(ATTRIBUTES),
                "consent": {c: rng.choice(["none", "pending", "granted", "withdrawn"]) for c in ("email", "sms")},
                "purchases": [
                    (rng.choice(PURCHASE_DAYS_AGO), rng.choice(AMOUNTS), rng.choice(["online", "store"]))
                    for _ in range(rng.choice([0, 0, 1, 2, 3, 5]))
                ],
                "accounts": {
                    programme: (rng.choice([0, 1, 50, 500]), rng.choice([None, 0, 1]), rng.choice(STATUSES))
                    for programme in ("p1", "p2")
                    if rng.random() < 0.5
                },
                "erased": rng.random() < 0.06,
                "merged": rng.random() < 0.06,
            }
        )
    # Every attribute shape at least once, on a customer with nothing else.
    for attributes in ATTRIBUTES:
        specs.append({**_blank(), "attributes": attributes})
    # Totals that binary floats cannot hold exactly (0.30, 29.97), and purchases on a window's edge.
    for purchases in (
        [(0, Decimal("0.10"), "online"), (0.5, Decimal("0.20"), "online")],
        [(1, Decimal("9.99"), "store")] * 3,
        [(7, Decimal("0.10"), "store"), (30, Decimal("0.20"), "online"), (365, Decimal("9.99"), "online")],
    ):
        specs.append({**_blank(), "purchases": purchases})
    return specs


STATUSES = ["active", "active", "suspended", "closed"]


def _blank() -> dict:
    return {
        "first_name": "",
        "last_name": "",
        "email": None,
        "phone": None,
        "store": None,
        "region": None,
        "source": "web",
        "attributes": {},
        "consent": {},
        "purchases": [],
        "accounts": {},
        "erased": False,
        "merged": False,
    }


@pytest.fixture
def population(db):
    """Customers in the database, and the same people as plain dicts for the oracle."""
    now = timezone.now().replace(microsecond=123456)
    stores = {key: StoreFactory(code=f"prop-{key}", region=region) for key, region in REGIONS.items()}
    programmes = {"p1": ProgrammeFactory(name="Rewards"), "p2": ProgrammeFactory(name="Club")}
    tiers = {
        "p1": [TierFactory(programme=programmes["p1"], rank=1), TierFactory(programme=programmes["p1"], rank=2)],
        "p2": [TierFactory(programme=programmes["p2"], rank=1), TierFactory(programme=programmes["p2"], rank=3)],
    }
    survivor = CustomerFactory(first_name="Survivor", email="survivor@example.com")
    people = {survivor.pk: {**_blank(), "first_name": "Survivor", "email": "survivor@example.com", "accounts": []}}
    used_emails = {"survivor@example.com"}
    for index, spec in enumerate(_person_specs(random.Random(20261129))):
        email = spec["email"]
        if email is not None and email.lower() in used_emails:
            email = f"{index}.{email}" if email else None  # one-per-address: keep the shape, vary the text
        if email is not None:
            used_emails.add(email.lower())
        phone = spec["phone"].format(index) if spec["phone"] else None
        customer = CustomerFactory(
            first_name=spec["first_name"],
            last_name=spec["last_name"],
            email=email,
            phone=phone,
            home_store=stores[spec["store"]] if spec["store"] else None,
            source=spec["source"],
            attributes=spec["attributes"],
            erased_at=now if spec["erased"] else None,
            merged_into=survivor if spec["merged"] else None,
        )
        for channel, status in spec["consent"].items():
            if status != "none":
                ConsentState.objects.create(customer=customer, channel=channel, status=status)
        for number, (days_ago, amount, channel) in enumerate(spec["purchases"]):
            Purchase.objects.create(
                customer=customer,
                channel=channel,
                store=stores["north"] if channel == "store" else None,
                source="till" if channel == "store" else "online_shop",
                external_ref=f"P{index}-{number}",
                amount=amount,
                occurred_at=now - timedelta(days=days_ago),
            )
        accounts = []
        for programme, (balance, tier, status) in spec["accounts"].items():
            tier_row = tiers[programme][tier] if tier is not None else None
            LoyaltyAccountFactory(
                customer=customer,
                programme=programmes[programme],
                points_balance=balance,
                tier=tier_row,
                status=status,
            )
            accounts.append(
                {
                    "balance": balance,
                    "tier": tier_row.pk if tier_row else None,
                    "rank": tier_row.rank if tier_row else None,
                    "active": status == "active",
                }
            )
        people[customer.pk] = {
            **spec,
            "email": email,
            "phone": phone,
            "store": stores[spec["store"]].pk if spec["store"] else None,
            "region": REGIONS[spec["store"]] if spec["store"] else None,
            "purchases": [{"at": now - timedelta(days=d), "amount": a, "channel": c} for d, a, c in spec["purchases"]],
            "accounts": accounts,
        }
    store_ids = [store.pk for store in stores.values()]
    tier_ids = [tier.pk for group in tiers.values() for tier in group]
    ids = {"stores": [*store_ids, max(store_ids) + 1000], "tiers": [*tier_ids, max(tier_ids) + 1000]}
    return now, people, ids


# --- the oracle: what each rule means, in plain Python ----------------------------------------------


def oracle(tree: dict, person: dict, now) -> bool:
    if person["erased"] or person["merged"]:
        return False  # only active profiles are ever in a segment
    return _holds(tree or {}, person, now)


def _holds(node: dict, p: dict, now) -> bool:
    if "type" not in node:
        results = [_holds(child, p, now) for child in node.get("rules", [])]
        match = node.get("match", "all")
        return all(results) if match == "all" else any(results) if match == "any" else not any(results)
    negate = node.get("op") in ("neq", "not_in", "not_granted", "not_within", "no", "is_not_set")
    return _positive(node, p, now) != negate


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(node: dict, p: dict, now) -> bool:
    """Whether the rule's positive form (eq, in, granted, within, yes, is_set) holds."""
    kind, op = node["type"], node.get("op")
    if kind == "profile":
        text = p[node["field"]]
        if op in ("is_set", "is_not_set"):
            return text is not None and text != ""
        if text is None:
            return False
        text, wanted = text.lower(), node["value"].lower()
        if op in ("eq", "neq"):
            return text == wanted
        return wanted in text if op == "contains" else text.startswith(wanted)
    if kind == "attribute":
        attributes, key = p["attributes"], node["key"]
        if op in ("is_set", "is_not_set"):
            return key in attributes
        if key not in attributes:
            return False
        have, wanted = attributes[key], node["value"]
        if isinstance(wanted, str):
            return isinstance(have, str) and have == wanted
        return _is_number(have) and have == wanted  # JSON has one number type: 42 equals 42.0
    if kind == "store":
        return p["store"] is not None and p["store"] in node["values"]
    if kind == "region":
        return p["region"] is not None and p["region"] in node["values"]
    if kind == "source":
        return p["source"] in node["values"]
    if kind == "consent":
        return p["consent"].get(node["channel"]) == "granted"
    if kind == "loyalty":
        accounts = [account for account in p["accounts"] if account["active"]]
        field = node["field"]
        if field == "enrolled":
            return bool(accounts)
        if field == "tier":
            return any(account["tier"] in node["values"] for account in accounts if account["tier"] is not None)
        column = "balance" if field == "balance" else "rank"
        return any(OPS[op](account[column], node["value"]) for account in accounts if account[column] is not None)
    # purchase
    channel, days = node.get("channel", "any"), node.get("days")
    purchases = [
        x
        for x in p["purchases"]
        if (channel == "any" or x["channel"] == channel) and (days is None or x["at"] >= now - timedelta(days=days))
    ]
    if node["metric"] == "recency":
        return bool(purchases)
    if node["metric"] == "count":
        return OPS[op](len(purchases), node["value"])
    return OPS[op](sum((x["amount"] for x in purchases), Decimal(0)), Decimal(str(node["value"])))


# --- rule trees ---------------------------------------------------------------------------------------


def _rule(**fields):
    return {key: value for key, value in fields.items() if value is not MISSING}


def _maybe(strategy):
    """An optional key: sometimes left out, so the documented default applies."""
    return st.one_of(st.just(MISSING), strategy)


def leaves(ids: dict):
    values = st.sampled_from
    profile = st.builds(
        lambda field, op, value: _rule(type="profile", field=field, op=op, value=value),
        values(["first_name", "email", "phone", "last_name"]),
        values(["eq", "neq", "contains", "starts_with"]),
        values(PROFILE_VALUES),
    ) | st.builds(
        lambda field, op: _rule(type="profile", field=field, op=op),
        values(["first_name", "email", "phone"]),
        values(["is_set", "is_not_set"]),
    )
    attribute = st.builds(
        lambda key, op, value: _rule(type="attribute", key=key, op=op, value=value),
        values(["size", "vip", "7", "07", "-1", "1_000", "a.b", "a", "tags", "missing"]),
        values(["eq", "neq"]),
        values(["42", 42, 42.0, 42.5, "42 ", "null", "true", 1, 0, "x", 7, "y", "k", "z", "[1,2]", "[1, 2]", "{}"]),
    ) | st.builds(
        lambda key, op: _rule(type="attribute", key=key, op=op),
        values(["size", "vip", "7", "07", "-1", "a.b", "a", "missing"]),
        values(["is_set", "is_not_set"]),
    )
    choice = st.one_of(
        st.builds(
            lambda op, v: _rule(type="region", op=op, values=v),
            values(["in", "not_in"]),
            st.lists(values(["North", "South", "", "West"]), min_size=1, max_size=3),
        ),
        st.builds(
            lambda op, v: _rule(type="store", op=op, values=v),
            values(["in", "not_in"]),
            st.lists(values(ids["stores"]), min_size=1, max_size=3),
        ),
        st.builds(
            lambda op, v: _rule(type="source", op=op, values=v),
            values(["in", "not_in"]),
            st.lists(values(["web", "store", "import", "api"]), min_size=1, max_size=3),
        ),
    )
    consent = st.builds(
        lambda channel, op: _rule(type="consent", channel=channel, op=op),
        values(["email", "sms", "push"]),
        _maybe(values(["granted", "not_granted"])),
    )
    days = values([1, 7, 30, 365])
    purchase = st.builds(
        lambda op, d, channel: _rule(type="purchase", metric="recency", op=op, days=d, channel=channel),
        values(["within", "not_within"]),
        days,
        _maybe(values(["any", "online", "store"])),
    ) | st.builds(
        lambda metric_value, op, d, channel: _rule(
            type="purchase", metric=metric_value[0], op=op, value=metric_value[1], days=d, channel=channel
        ),
        st.tuples(st.just("count"), values([0, 1, 2, 3, 5]))
        | st.tuples(st.just("spend"), values([0, "0.10", "0.30", 0.3, "9.99", "19.98", "29.97", "10.29", 25, 10.09])),
        values(list(OPS)),
        _maybe(values([None, 1, 7, 30, 365])),
        _maybe(values(["any", "online", "store"])),
    )
    loyalty = st.one_of(
        st.builds(lambda op: _rule(type="loyalty", field="enrolled", op=op), values(["yes", "no"])),
        st.builds(
            lambda field, op, value: _rule(type="loyalty", field=field, op=op, value=value),
            values(["balance", "tier_rank"]),
            values(list(OPS)),
            values([0, 1, 2, 3, 50, 499, 500]),
        ),
        st.builds(
            lambda op, v: _rule(type="loyalty", field="tier", op=op, values=v),
            values(["in", "not_in"]),
            st.lists(values(ids["tiers"]), min_size=1, max_size=3),
        ),
    )
    return st.one_of(profile, attribute, choice, consent, purchase, loyalty)


def trees(ids: dict):
    return st.recursive(
        leaves(ids),
        lambda children: st.builds(
            lambda match, rules, spell_out: _rule(match=match, rules=rules if rules or spell_out else MISSING),
            _maybe(st.sampled_from(["all", "any", "none"])),
            st.lists(children, max_size=4),
            st.booleans(),  # an empty group is sometimes written without its rules
        ),
        max_leaves=10,
    )


def _group_depth(node: dict, level: int = 1) -> int:
    if "type" in node:
        return 0
    return max([level, *(_group_depth(child, level + 1) for child in node.get("rules", []))])


def test_any_rule_tree_selects_the_customers_its_meaning_selects(population):
    now, people, ids = population
    segment = SegmentFactory.build()  # segment_counts reads only its kind and rules

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(tree=trees(ids))
    def check(tree):
        if _group_depth(tree) > MAX_DEPTH:
            with pytest.raises(RuleError):
                segment_q(tree, now=now)
            return
        selected = set(segment_customers(tree, now=now).values_list("pk", flat=True))
        expected = {pk for pk, person in people.items() if oracle(tree, person, now)}
        assert selected == expected, (tree, sorted(selected ^ expected))
        segment.rules = tree
        assert segment_counts(segment, now=now)["total"] == len(expected)
        # As a CASE condition, the way a persona picks its message variant.
        chosen = Case(When(segment_q(tree, now=now), then=Value(1)), default=Value(0), output_field=IntegerField())
        assert set(Customer.objects.annotate(chosen=chosen).filter(chosen=1).values_list("pk", flat=True)) == expected

    check()
