"""The rule builder writes the JSON grammar of ``campaigns.segments`` and reads it back, field by field.

The round trips go through the rendered HTML: what the builder shows is parsed as a browser without
JavaScript would post it, so the template and the parser are checked together.
"""

import pytest
from django.template.loader import render_to_string

from campaigns.rule_builder import (
    Builder,
    action_apply,
    nodes_from_data,
    nodes_from_tree,
    tree_canonical,
    tree_from_nodes,
)
from tests.campaigns.posted_form import form_fields
from tests.factories import StoreFactory
from tests.factories.loyalty import TierFactory

pytestmark = pytest.mark.django_db


def _posted(builder: Builder) -> dict[str, list[str]]:
    html = render_to_string("admin/campaigns/segment/rule_builder_tree.html", {"builder": builder.prepared()})
    return form_fields(f'<form id="builder">{html}</form>', "builder")


def _round_trip(tree: dict) -> dict | None:
    """Shown by the builder, posted back unchanged, turned into JSON again."""
    posted = _posted(Builder(root=nodes_from_tree(tree)))
    rebuilt, errors = tree_from_nodes(nodes_from_data(_query(posted)))
    assert errors == []
    return rebuilt


def _query(fields: dict[str, list[str]]):
    from django.http import QueryDict

    query = QueryDict(mutable=True)
    for name, values in fields.items():
        query.setlist(name, values)
    return query


@pytest.fixture
def stores():
    return [
        StoreFactory(code="n1", name="Harbour", region="North"),
        StoreFactory(code="s1", name="Mall", region="South"),
    ]


@pytest.fixture
def gold():
    return TierFactory(name="Gold", rank=3)


def _every_rule(stores, gold):
    return [
        *({"type": "profile", "field": field, "op": op, "value": "Ann"}
          for field in ("first_name", "last_name", "email", "phone", "locale", "time_zone")
          for op in ("eq", "neq", "contains", "starts_with")),
        {"type": "profile", "field": "email", "op": "is_set"},
        {"type": "profile", "field": "first_name", "op": "is_not_set"},
        {"type": "attribute", "key": "shoe_size", "op": "eq", "value": "42"},
        {"type": "attribute", "key": "shoe_size", "op": "eq", "value": 42},
        {"type": "attribute", "key": "height", "op": "neq", "value": 7.5},
        {"type": "attribute", "key": "7", "op": "is_set"},
        {"type": "attribute", "key": "vip", "op": "is_not_set"},
        {"type": "store", "op": "in", "values": [stores[0].pk, stores[1].pk]},
        {"type": "store", "op": "not_in", "values": [stores[1].pk]},
        {"type": "region", "op": "in", "values": ["North"]},
        {"type": "region", "op": "not_in", "values": ["North", "South"]},
        {"type": "source", "op": "in", "values": ["web", "store"]},
        {"type": "source", "op": "not_in", "values": ["import", "api"]},
        {"type": "consent", "channel": "email", "op": "granted"},
        {"type": "consent", "channel": "sms", "op": "not_granted"},
        {"type": "consent", "channel": "push", "op": "granted"},
        {"type": "purchase", "metric": "recency", "op": "within", "days": 90, "channel": "any"},
        {"type": "purchase", "metric": "recency", "op": "not_within", "since": "2026-01-31", "channel": "store"},
        {"type": "purchase", "metric": "count", "op": "gte", "value": 3, "days": 365, "channel": "online"},
        {"type": "purchase", "metric": "count", "op": "eq", "value": 0, "channel": "any"},
        {"type": "purchase", "metric": "spend", "op": "lt", "value": 49.9, "channel": "any"},
        {"type": "purchase", "metric": "spend", "op": "gt", "value": 1000, "since": "2025-12-01", "channel": "store"},
        {"type": "loyalty", "field": "enrolled", "op": "yes"},
        {"type": "loyalty", "field": "enrolled", "op": "no"},
        {"type": "loyalty", "field": "balance", "op": "gte", "value": 500},
        {"type": "loyalty", "field": "tier_rank", "op": "lte", "value": 2},
        {"type": "loyalty", "field": "tier", "op": "in", "values": [gold.pk]},
        {"type": "loyalty", "field": "tier", "op": "not_in", "values": [gold.pk]},
    ]


def test_every_rule_type_survives_the_form_round_trip(stores, gold):
    # given every kind of rule the grammar has, each operator family at least once
    for rule in _every_rule(stores, gold):
        tree = {"match": "all", "rules": [rule]}
        # when it is shown by the builder and posted back unchanged
        # then the JSON is exactly the same
        assert _round_trip(tree) == tree, rule


def test_groups_nested_three_deep_survive_the_round_trip(stores, gold):
    # given all > any > none, each with rules, in a mixed order
    tree = {"match": "all", "rules": [
        {"type": "region", "op": "in", "values": ["North"]},
        {"match": "any", "rules": [
            {"type": "purchase", "metric": "recency", "op": "within", "days": 90, "channel": "any"},
            {"match": "none", "rules": [
                {"type": "profile", "field": "first_name", "op": "is_not_set"},
                {"type": "consent", "channel": "sms", "op": "granted"},
            ]},
            {"type": "loyalty", "field": "tier", "op": "in", "values": [gold.pk]},
        ]},
        {"match": "none", "rules": []},
        {"type": "store", "op": "not_in", "values": [stores[0].pk]},
    ]}
    # when / then
    assert _round_trip(tree) == tree


def test_the_builder_shows_stores_and_tiers_by_name_never_by_id(stores, gold):
    tree = {"match": "all", "rules": [{"type": "store", "op": "in", "values": [stores[0].pk]},
                                      {"type": "loyalty", "field": "tier", "op": "in", "values": [gold.pk]}]}
    html = render_to_string("admin/campaigns/segment/rule_builder_tree.html",
                            {"builder": Builder(root=nodes_from_tree(tree)).prepared()})
    assert "Harbour (n1)" in html
    assert "Mall (s1)" in html
    assert ">Gold<" not in html
    assert " Gold" in html
    assert f"> {stores[0].pk}" not in html  # the id is the checkbox's value only


def test_a_rule_alone_or_an_empty_tree_becomes_a_group_with_the_same_meaning():
    rule = {"type": "consent", "channel": "email", "op": "granted"}
    assert _round_trip(rule) == {"match": "all", "rules": [rule]}
    assert _round_trip({}) == {"match": "all", "rules": []}
    # defaults the JSON may leave out are written out
    assert tree_canonical({"rules": [{"type": "consent", "channel": "sms"}]}) == {
        "match": "all", "rules": [{"type": "consent", "channel": "sms", "op": "granted"}]}


def test_add_and_remove_change_the_tree_and_renumber_it():
    root = nodes_from_tree({"match": "all", "rules": [{"type": "loyalty", "field": "enrolled", "op": "yes"}]})
    action_apply(root, "add_group:0")
    action_apply(root, "add_rule:0.1")
    assert [child.path for child in root.find("0.1").children] == ["0.1.0", "0.1.1"]
    action_apply(root, "remove:0.0")
    assert [child.kind for child in root.children] == ["group"]
    assert root.children[0].path == "0.0"
    assert root.find("0.0.1").kind == "rule"
    action_apply(root, "remove:0")  # the top group stays
    assert root.children


def _posted_rule(**fields) -> dict:
    data = {"rb-0-kind": "group", "rb-0-match": "all", "rb-0.0-kind": "rule"}
    data |= {f"rb-0.0-{name}": value for name, value in fields.items()}
    return data


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"field": ""}, "Field: choose"),
        ({"field": "profile:first_name", "op": "in"}, "Operator: choose one of is, is not"),
        ({"field": "profile:first_name", "op": "eq", "value": ""}, "(First name): Value: fill this in"),
        ({"field": "purchase:recency", "op": "within", "days": "abc", "channel": "any"},
         "(Bought): Days: write a whole"),
        ({"field": "purchase:recency", "op": "within", "days": "0", "channel": "any"}, "Days: write a whole number"),
        ({"field": "purchase:recency", "op": "within", "days": "", "channel": "any"}, "Days: give the number of days"),
        ({"field": "purchase:recency", "op": "within", "days": "5", "since": "2026-01-01", "channel": "any"},
         "Days: give the number of days or a date, not both"),
        ({"field": "purchase:recency", "op": "within", "since": "2026-02-31", "channel": "any"},
         "(Bought): Bought: since is a date written as YYYY-MM-DD"),
        ({"field": "purchase:spend", "op": "gte", "value": "1e3", "channel": "any"},
         "(Amount spent): Value: write an amount"),
        ({"field": "purchase:count", "op": "gte", "value": "2.5", "channel": "any"}, "Value: write a whole number"),
        ({"field": "purchase:count", "op": "gte", "value": "2", "channel": "mail"}, "Where: choose online or in store"),
        ({"field": "attribute", "op": "eq", "key": "shoe size!", "value": "4"},
         "(Attribute): Attribute: an attribute key"),
        ({"field": "attribute", "op": "eq", "key": "size", "value": "big", "vtype": "number"}, "Value: write a number"),
        ({"field": "store", "op": "in"}, "(Home store): Values: tick at least one"),
        ({"field": "store", "op": "in", "values": ["x"]}, "Values: choose from the list"),
        ({"field": "source", "op": "in", "values": ["fax"]}, "(Signed up through): Signed up through: values must be"),
        ({"field": "consent", "op": "granted", "channel": "pigeon"}, "(Consent): Channel: choose email, SMS or push"),
        ({"field": "loyalty:balance", "op": "gte", "value": "-5"}, "(Points balance): Value: write a whole number"),
        ({"field": "loyalty:tier", "op": "in"}, "(Tier): Values: tick at least one"),
    ],
)
def test_invalid_values_are_refused_naming_the_rule_and_the_field(fields, named):
    root = nodes_from_data(_posted_rule(**fields))
    tree, errors = tree_from_nodes(root)
    assert tree is None
    assert len(errors) == 1, errors
    assert errors[0].startswith("Rule 1")
    assert named in errors[0]
    assert root.find("0.0").errors  # shown beside the rule too


def test_groups_deeper_than_the_json_allows_are_refused_as_the_json_is():
    # given seven groups nested in the posted fields (the JSON allows six)
    data = {}
    path = "0"
    for _ in range(7):
        data |= {f"rb-{path}-kind": "group", f"rb-{path}-match": "any"}
        path += ".0"
    data |= {f"rb-{path}-kind": "rule", f"rb-{path}-field": "loyalty:enrolled", f"rb-{path}-op": "yes"}
    # when / then
    tree, errors = tree_from_nodes(nodes_from_data(data))
    assert tree is None
    assert errors == ["Groups nest at most 6 deep."]
    # and the builder offers no "Add group" where one more would be too deep
    root = nodes_from_data(data)
    assert action_apply(root, "add_group:0.0.0.0.0").find("0.0.0.0.0").children[-1].kind == "group"
    assert len(action_apply(root, "add_group:0.0.0.0.0.0").find("0.0.0.0.0.0").children) == 1


def test_rules_the_builder_cannot_show_are_left_to_the_json_box():
    builder = Builder.from_tree({"match": "all", "rules": [{"type": "nope"}]})
    assert "edited as JSON only" in builder.notice
    assert builder.root.children == []
