"""The segment rule builder: a rule tree (see ``campaigns.segments``) as plain form fields, and back.

Every node of the tree posts its own named fields, so the builder is an ordinary HTML form that works
without JavaScript. A node's path is its position, "0" for the top group and "0.2.1" for the second
child's third child; it posts ``rb-<path>-kind`` ("group" or "rule") and, for a group, ``rb-<path>-match``,
for a rule ``rb-<path>-field`` (such as ``purchase:recency``) with ``-op``, ``-value``, ``-values``...
Buttons named ``rb-action`` ("add_rule:0.1", "add_group:0", "remove:0.2", "refresh", "load_json") change
the tree and re-render the page; nothing is saved until the form is saved.

The builder writes exactly the JSON grammar ``segments.py`` accepts and checks every rule with the
same validation the JSON goes through, so both ways in refuse the same trees.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Mapping

from campaigns.segments import MAX_DEPTH, PROFILE_FIELDS, RuleError, rules_validate
from customers.models import Channel, Source, Store

PREFIX = "rb"
ACTION = "rb-action"
_FIELD_NAME = re.compile(r"^rb-(0(?:\.\d{1,4}){0,8})-([a-z_]+)$")
_WHOLE = re.compile(r"^\d{1,10}$")
_DECIMAL = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
_NUMBER = re.compile(r"^-?\d{1,15}(\.\d{1,15})?$")

MATCHES = [("all", "all of"), ("any", "any of"), ("none", "none of")]
TEXT_OPS = [
    ("eq", "is"),
    ("neq", "is not"),
    ("contains", "contains"),
    ("starts_with", "starts with"),
    ("is_set", "is set"),
    ("is_not_set", "is not set"),
]
COMPARE_OPS = [("gte", "at least"), ("gt", "more than"), ("eq", "exactly"), ("lte", "at most"), ("lt", "less than")]
IN_OPS = [("in", "is any of"), ("not_in", "is none of")]
VALUELESS_OPS = frozenset({"is_set", "is_not_set"})
PURCHASE_CHANNELS = [("any", "online or in store"), ("online", "online"), ("store", "in store")]
VALUE_TYPES = [("text", "as text"), ("number", "as a number")]


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What a marketer picks in the first box of a rule, and which inputs that rule then shows."""

    key: str
    label: str
    group: str
    ops: list[tuple[str, str]]
    inputs: frozenset[str] = frozenset()
    choices: str = ""  # which list the "values" checkboxes or the "channel" select come from
    value_kind: str = "text"  # text, whole, decimal


_PROFILE_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email address",
    "phone": "Phone number",
    "locale": "Language (locale)",
    "time_zone": "Time zone",
}
_WINDOW = frozenset({"days", "since", "purchase_channel"})

FIELD_SPECS: dict[str, FieldSpec] = {
    spec.key: spec
    for spec in [
        *(FieldSpec(f"profile:{name}", _PROFILE_LABELS[name], "Profile", TEXT_OPS, frozenset({"value"}))
          for name in PROFILE_FIELDS),
        FieldSpec("attribute", "Attribute", "Profile",
                  [("eq", "is"), ("neq", "is not"), ("is_set", "is set"), ("is_not_set", "is not set")],
                  frozenset({"key", "value", "vtype"})),
        FieldSpec("store", "Home store", "Where", IN_OPS, frozenset({"values"}), choices="stores"),
        FieldSpec("region", "Home store's region", "Where", IN_OPS, frozenset({"values"}), choices="regions"),
        FieldSpec("source", "Signed up through", "Where", IN_OPS, frozenset({"values"}), choices="sources"),
        FieldSpec("consent", "Consent", "Consent", [("granted", "granted"), ("not_granted", "not granted")],
                  frozenset({"channel"}), choices="channels"),
        FieldSpec("purchase:recency", "Bought", "Purchases", [("within", "within"), ("not_within", "not within")],
                  _WINDOW),
        FieldSpec("purchase:count", "Number of purchases", "Purchases", COMPARE_OPS, _WINDOW | {"value"},
                  value_kind="whole"),
        FieldSpec("purchase:spend", "Amount spent", "Purchases", COMPARE_OPS, _WINDOW | {"value"},
                  value_kind="decimal"),
        FieldSpec("loyalty:enrolled", "Loyalty member", "Loyalty", [("yes", "yes"), ("no", "no")]),
        FieldSpec("loyalty:balance", "Points balance", "Loyalty", COMPARE_OPS, frozenset({"value"}),
                  value_kind="whole"),
        FieldSpec("loyalty:tier_rank", "Tier rank", "Loyalty", COMPARE_OPS, frozenset({"value"}),
                  value_kind="whole"),
        FieldSpec("loyalty:tier", "Tier", "Loyalty", IN_OPS, frozenset({"values"}), choices="tiers"),
    ]
}


class Unrepresentable(ValueError):
    """A rule tree the builder cannot show field by field (it can still be edited as JSON)."""


@dataclasses.dataclass
class Node:
    path: str = "0"
    kind: str = "group"
    match: str = "all"
    children: list[Node] = dataclasses.field(default_factory=list)
    field: str = ""
    op: str = ""
    value: str = ""
    vtype: str = "text"
    key: str = ""
    values: list[str] = dataclasses.field(default_factory=list)
    channel: str = ""
    days: str = ""
    since: str = ""
    errors: list[str] = dataclasses.field(default_factory=list)
    options: list[tuple[str, str]] = dataclasses.field(default_factory=list, compare=False, repr=False)

    @property
    def spec(self) -> FieldSpec | None:
        return FIELD_SPECS.get(self.field)

    @property
    def label(self) -> str:
        """The rule's number as a marketer reads it: "2.1" is the first rule of the second item."""
        return ".".join(str(int(part) + 1) for part in self.path.split(".")[1:]) or "top"

    @property
    def depth(self) -> int:
        return self.path.count(".")

    def shown_op(self) -> str:
        ops = [value for value, _ in self.spec.ops] if self.spec else []
        return self.op if self.op in ops else (ops[0] if ops else "")

    def renumber(self, path: str = "0") -> Node:
        self.path = path
        for index, child in enumerate(self.children):
            child.renumber(f"{path}.{index}")
        return self

    def find(self, path: str) -> Node | None:
        if self.path == path:
            return self
        for child in self.children:
            if path == child.path or path.startswith(child.path + "."):
                return child.find(path)
        return None

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


# --- JSON -> nodes -----------------------------------------------------------------------------


def nodes_from_tree(tree) -> Node:
    """The builder's view of a stored rule tree; a rule at the top becomes an "all" group holding it."""
    if tree in (None, {}):
        return Node()
    if not isinstance(tree, dict):
        raise Unrepresentable("The rules are not a JSON object.")
    root = _node_from_json(tree, depth=1) if "type" not in tree else Node(children=[_rule_from_json(tree)])
    return root.renumber()


def _node_from_json(item, *, depth: int) -> Node:
    if not isinstance(item, dict):
        raise Unrepresentable("A group holds groups and rules only.")
    if "type" in item:
        return _rule_from_json(item)
    if depth > MAX_DEPTH:
        raise Unrepresentable(f"Groups nest at most {MAX_DEPTH} deep.")
    match, rules = item.get("match", "all"), item.get("rules", [])
    if match not in ("all", "any", "none") or not isinstance(rules, list):
        raise Unrepresentable("A group is {\"match\": all, any or none, \"rules\": [...]}.")
    return Node(kind="group", match=match, children=[_node_from_json(rule, depth=depth + 1) for rule in rules])


def _text(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Unrepresentable(f"{value!r} is not text or a number.")
    return str(value)


def _texts(values) -> list[str]:
    if not isinstance(values, list):
        raise Unrepresentable("values must be a list.")
    return [_text(item) for item in values]


def _rule_from_json(rule: dict) -> Node:
    kind = rule.get("type")
    node = Node(kind="rule", op=str(rule.get("op", "")))
    if kind == "profile":
        node.field, node.value = f"profile:{rule.get('field')}", _text(rule.get("value", ""))
    elif kind == "attribute":
        value = rule.get("value", "")
        node.field, node.key, node.value = "attribute", _text(rule.get("key", "")), _text(value)
        node.vtype = "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else "text"
    elif kind in ("store", "region", "source"):
        node.field, node.values = kind, _texts(rule.get("values", []))
    elif kind == "consent":
        node.field, node.channel, node.op = "consent", _text(rule.get("channel", "")), rule.get("op", "granted")
    elif kind == "purchase":
        node.field, node.channel = f"purchase:{rule.get('metric')}", _text(rule.get("channel", "any"))
        node.days = "" if rule.get("days") is None else _text(rule["days"])
        node.since = "" if rule.get("since") is None else _text(rule["since"])
        node.value = "" if rule.get("value") is None else _text(rule["value"])
    elif kind == "loyalty":
        node.field = f"loyalty:{rule.get('field')}"
        node.value = "" if rule.get("value") is None else _text(rule["value"])
        node.values = _texts(rule.get("values", [])) if rule.get("field") == "tier" else []
    if node.spec is None:
        raise Unrepresentable(f"The builder does not know the rule {json.dumps(rule)[:80]}.")
    return node


# --- posted fields -> nodes ----------------------------------------------------------------------


def nodes_from_data(data: Mapping) -> Node:
    """The tree the builder's posted fields describe, renumbered; ``data`` is a QueryDict or a plain dict."""
    fields: dict[str, dict[str, object]] = {}
    for name in data:
        found = _FIELD_NAME.match(name)
        if found:
            path, attr = found.groups()
            many = attr == "values"
            if many and hasattr(data, "getlist"):
                value = data.getlist(name)
            else:
                value = data[name]
                value = list(value) if many and isinstance(value, (list, tuple)) else value
            fields.setdefault(path, {})[attr] = value
    nodes: dict[str, Node] = {}
    for path in sorted(fields, key=lambda path: [int(part) for part in path.split(".")]):
        attrs = fields[path]
        if attrs.get("kind") not in ("group", "rule"):
            continue
        parent = nodes.get(path.rpartition(".")[0]) if "." in path else None
        if path != "0" and (parent is None or parent.kind != "group"):
            continue  # its group was removed
        node = Node(path=path, kind=str(attrs["kind"]))
        if node.kind == "group":
            node.match = str(attrs.get("match", "all"))
        else:
            for attr in ("field", "op", "value", "vtype", "key", "channel", "days", "since"):
                setattr(node, attr, str(attrs.get(attr, getattr(node, attr))).strip())
            values = attrs.get("values", [])
            node.values = [str(item) for item in (values if isinstance(values, list) else [values])]
        nodes[path] = node
        if parent is not None:
            parent.children.append(node)
    root = nodes.get("0")
    if root is None or root.kind != "group":
        root = Node()
    return root.renumber()


def has_builder_fields(data: Mapping) -> bool:
    return "rb-0-kind" in data


def action_apply(root: Node, action: str) -> Node:
    """Add a rule or a group to a group, or remove a node; unknown actions leave the tree as it is."""
    verb, _, path = action.partition(":")
    target = root.find(path) if path else None
    if verb == "add_rule" and target is not None and target.kind == "group":
        target.children.append(Node(kind="rule"))
    elif verb == "add_group" and target is not None and target.kind == "group" and target.depth < MAX_DEPTH - 1:
        target.children.append(Node(kind="group", children=[Node(kind="rule")]))
    elif verb == "remove" and target is not None and target is not root:
        parent = root.find(path.rpartition(".")[0])
        parent.children.remove(target)
    return root.renumber()


def _show_defaults(root: Node) -> None:
    """Hold what the page shows for a box not yet chosen (the first operator, email, online or in store).

    Only when re-rendering after a button: on Save an operator left over from another field is refused,
    never silently replaced.
    """
    for node in root.walk():
        if node.kind == "rule" and node.spec:
            node.op = node.shown_op()
            if "channel" in node.spec.inputs and node.channel not in Channel.values:
                node.channel = Channel.EMAIL
            if "purchase_channel" in node.spec.inputs and node.channel not in dict(PURCHASE_CHANNELS):
                node.channel = "any"


# --- nodes -> JSON -------------------------------------------------------------------------------


def tree_from_nodes(root: Node) -> tuple[dict | None, list[str]]:
    """The JSON rule tree, or ``None`` and the errors (each also kept on its node, naming the field)."""
    errors: list[str] = []
    tree = _group_json(root, errors)
    if errors:
        return None, errors
    try:
        rules_validate(tree)
    except RuleError as exc:
        # Only limits on the whole tree are left (depth, number of rules): the rules passed one by one.
        message = (str(exc).partition(": ")[2] or str(exc)).capitalize()
        root.errors.append(message)
        return None, [message]
    return tree, []


def _group_json(node: Node, errors: list[str]) -> dict:
    if node.match not in ("all", "any", "none"):
        _refuse(node, errors, "Match", "choose all, any or none")
    return {"match": node.match, "rules": [
        _group_json(child, errors) if child.kind == "group" else _rule_json(child, errors) for child in node.children
    ]}


def _refuse(node: Node, errors: list[str], field: str, message: str) -> None:
    spec = node.spec
    what = f"Rule {node.label}" + (f" ({spec.label})" if spec else "") if node.kind == "rule" else f"Group {node.label}"
    node.errors.append(f"{field}: {message}.")
    errors.append(f"{what}: {field}: {message}.")


def _rule_json(node: Node, errors: list[str]) -> dict:
    spec = node.spec
    if spec is None:
        _refuse(node, errors, "Field", "choose what this rule looks at")
        return {}
    if node.op not in dict(spec.ops):
        _refuse(node, errors, "Operator", f"choose one of {', '.join(label for _, label in spec.ops)}")
        return {}
    before = len(errors)
    kind, _, sub = spec.key.partition(":")
    rule: dict = {"type": kind}
    if kind == "profile":
        rule |= {"field": sub, "op": node.op}
        if node.op not in VALUELESS_OPS:
            rule["value"] = _required(node, errors, node.value, "Value")
    elif kind == "attribute":
        rule |= {"key": _required(node, errors, node.key, "Attribute key"), "op": node.op}
        if node.op not in VALUELESS_OPS:
            rule["value"] = _attribute_value(node, errors)
    elif kind in ("store", "region", "source"):
        rule |= {"op": node.op, "values": _chosen(node, errors, whole=kind == "store")}
    elif kind == "consent":
        rule |= {"channel": node.channel, "op": node.op}
        if node.channel not in Channel.values:
            _refuse(node, errors, "Channel", "choose email, SMS or push")
    elif kind == "purchase":
        rule |= {"metric": sub, "op": node.op}
        if sub != "recency":
            rule["value"] = _number(node, errors, node.value, "Value", spec.value_kind)
        rule |= _window(node, errors, required=sub == "recency")
        if node.channel not in dict(PURCHASE_CHANNELS):
            _refuse(node, errors, "Where", "choose online or in store, or both")
        rule["channel"] = node.channel
    else:
        rule |= {"field": sub, "op": node.op}
        if sub in ("balance", "tier_rank"):
            rule["value"] = _number(node, errors, node.value, "Value", "whole")
        elif sub == "tier":
            rule["values"] = _chosen(node, errors, whole=True)
    if len(errors) == before:
        try:
            rules_validate(rule)
        except RuleError as exc:
            _refuse(node, errors, spec.label, str(exc).partition(": ")[2] or str(exc))
    return rule


def _required(node: Node, errors: list[str], text: str, field: str) -> str:
    if not text:
        _refuse(node, errors, field, "fill this in")
    return text


def _attribute_value(node: Node, errors: list[str]):
    if node.vtype != "number":
        return _required(node, errors, node.value, "Value")
    if not _NUMBER.fullmatch(node.value):
        _refuse(node, errors, "Value", "write a number such as 42 or 7.5")
        return node.value
    return float(node.value) if "." in node.value else int(node.value)


def _number(node: Node, errors: list[str], text: str, field: str, kind: str):
    if kind == "decimal":
        if not _DECIMAL.fullmatch(text):
            _refuse(node, errors, field, "write an amount in plain digits, such as 1000 or 49.90")
            return text
        return float(text) if "." in text else int(text)
    if not _WHOLE.fullmatch(text):
        _refuse(node, errors, field, "write a whole number")
        return text
    return int(text)


def _window(node: Node, errors: list[str], *, required: bool) -> dict:
    if node.days and node.since:
        _refuse(node, errors, "Days", "give the number of days or a date, not both")
        return {}
    if node.since:
        return {"since": node.since}
    if node.days:
        if not _WHOLE.fullmatch(node.days) or not 0 < int(node.days) <= 36_600:
            _refuse(node, errors, "Days", "write a whole number of days from 1 to 36600")
            return {"days": node.days}
        return {"days": int(node.days)}
    if required:
        _refuse(node, errors, "Days", "give the number of days or a date")
    return {}


def _chosen(node: Node, errors: list[str], *, whole: bool) -> list:
    if not node.values:
        _refuse(node, errors, "Values", "tick at least one")
        return []
    if whole:
        if not all(item.isdigit() for item in node.values):
            _refuse(node, errors, "Values", "choose from the list")
            return node.values
        return [int(item) for item in node.values]
    return list(node.values)


def tree_canonical(tree) -> dict | None:
    """The tree as the builder would write it, or ``None`` when the builder cannot show it."""
    try:
        root = nodes_from_tree(tree)
    except Unrepresentable:
        return None
    return tree_from_nodes(root)[0]


# --- choices for rendering ------------------------------------------------------------------------


@dataclasses.dataclass
class Choices:
    """What the value boxes offer, read once per page: stores and tiers by name, never by id."""

    stores: list[tuple[str, str]]
    regions: list[tuple[str, str]]
    tiers: list[tuple[str, str]]
    sources: list[tuple[str, str]] = dataclasses.field(default_factory=lambda: list(Source.choices))
    channels: list[tuple[str, str]] = dataclasses.field(default_factory=lambda: list(Channel.choices))

    @classmethod
    def load(cls) -> Choices:
        from loyalty.models import Tier

        stores = [(str(pk), f"{name} ({code})") for pk, name, code in Store.objects.values_list("pk", "name", "code")]
        regions = Store.objects.exclude(region="").order_by("region").values_list("region", flat=True).distinct()
        tiers = list(Tier.objects.select_related("programme").order_by("programme__name", "rank"))
        several = len({tier.programme_id for tier in tiers}) > 1
        return cls(
            stores=stores,
            regions=[(region, region) for region in regions],
            tiers=[(str(tier.pk), f"{tier.programme.name}: {tier.name}" if several else tier.name) for tier in tiers],
        )

    def for_node(self, node: Node) -> list[tuple[str, str]]:
        """The node's list, plus any value it holds that the list lacks (a deleted store stays visible)."""
        options = list(getattr(self, node.spec.choices)) if node.spec and node.spec.choices else []
        known = {value for value, _ in options}
        options += [(value, f"{value} (no longer exists)") for value in node.values if value not in known]
        return options


FIELD_GROUPS = [
    (group, [(spec.key, spec.label) for spec in FIELD_SPECS.values() if spec.group == group])
    for group in ("Profile", "Where", "Consent", "Purchases", "Loyalty")
]


@dataclasses.dataclass
class Builder:
    """One rendering of the builder: the tree, what its boxes offer, and what to tell the marketer."""

    root: Node
    notice: str = ""
    action: str = ""
    choices: Choices | None = None

    matches = MATCHES
    field_groups = FIELD_GROUPS
    purchase_channels = PURCHASE_CHANNELS
    value_types = VALUE_TYPES
    max_group_depth = MAX_DEPTH - 1

    @classmethod
    def from_tree(cls, tree) -> Builder:
        try:
            return cls(root=nodes_from_tree(tree))
        except Unrepresentable as exc:
            return cls(root=Node(), notice=f"{exc} These rules can be edited as JSON only (below).")

    @classmethod
    def from_data(cls, data: Mapping) -> Builder:
        """The posted tree with the posted action applied ("load_json" reads the JSON box instead)."""
        action = str(data.get(ACTION, ""))
        if action == "load_json":
            try:
                loaded = cls.from_tree(json.loads(data.get("rules") or "{}"))
            except ValueError:
                loaded = cls(root=nodes_from_data(data), notice="The JSON box does not hold valid JSON.")
            loaded.action = action
            return loaded
        root = nodes_from_data(data)
        if action:
            _show_defaults(root)
        return cls(root=action_apply(root, action), action=action)

    def tree(self) -> dict | None:
        """The JSON of the tree as it stands, without marking errors on the nodes shown."""
        tree, _ = tree_from_nodes(copy.deepcopy(self.root))
        return tree

    def counts(self) -> dict[str, int] | None:
        from campaigns.audience import segment_counts
        from campaigns.models import Segment

        tree = self.tree()
        return None if tree is None else segment_counts(Segment(kind=Segment.Kind.RULES, rules=tree))

    def prepared(self) -> Builder:
        """Attach each rule's value list, read from the database once for the whole tree."""
        self.choices = self.choices or Choices.load()
        for node in self.root.walk():
            node.options = self.choices.for_node(node)
        return self
