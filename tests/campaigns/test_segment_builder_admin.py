"""The segment page's rule builder without JavaScript: every button re-renders the page, Save writes once."""

import json

import pytest
from django.urls import reverse

from campaigns.models import AuditEvent, Segment
from tests.campaigns.posted_form import form_fields
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.campaigns import SegmentFactory
from tests.factories.customers import PASSWORD
from tests.factories.loyalty import TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory(email="marketer@staff.example.com")
    client.login(username=user.username, password=PASSWORD)
    return user


def _press(client, url, fields, button: tuple[str, str], **changes):
    """Post the page's form as a browser without JavaScript would, pressing ``button``."""
    data = {**fields, **{name: value if isinstance(value, list) else [value] for name, value in changes.items()}}
    data[button[0]] = [button[1]]
    return client.post(url, data)


def _fields(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    return form_fields(response.content.decode(), "segment_form")


def test_building_a_nested_segment_without_javascript(client, marketer):
    # given stores in two regions and a Gold tier
    StoreFactory(code="n1", name="Harbour", region="North")
    StoreFactory(code="s1", name="Mall", region="South")
    gold = TierFactory(name="Gold", rank=3)
    url = reverse("admin:campaigns_segment_add")
    page = _fields(client.get(url))
    assert page["rb-0-kind"] == ["group"]

    # when the marketer adds a rule, picks "region" and applies it
    page = _fields(_press(client, url, page, ("rb-action", "add_rule:0"), name="Northern regulars"))
    page = _fields(_press(client, url, page, ("rb-action", "refresh"), **{"rb-0.0-field": "region"}))
    assert page["rb-0.0-op"] == ["in"]
    # then adds an "any" group holding a purchase rule and a tier rule
    page = _fields(_press(client, url, page, ("rb-action", "add_group:0"), **{"rb-0.0-values": "North"}))
    page = _fields(_press(client, url, page, ("rb-action", "refresh"), **{
        "rb-0.1-match": "any", "rb-0.1.0-field": "purchase:recency"}))
    page = _fields(_press(client, url, page, ("rb-action", "add_rule:0.1"), **{"rb-0.1.0-days": "90"}))
    page = _fields(_press(client, url, page, ("rb-action", "refresh"), **{"rb-0.1.1-field": "loyalty:tier"}))
    # and a "none" group with "first name is not set", after removing a stray rule
    page = _fields(_press(client, url, page, ("rb-action", "add_group:0"), **{"rb-0.1.1-values": str(gold.pk)}))
    page = _fields(_press(client, url, page, ("rb-action", "add_rule:0"), **{"rb-0.2-match": "none"}))
    page = _fields(_press(client, url, page, ("rb-action", "remove:0.3")))
    page = _fields(_press(client, url, page, ("rb-action", "refresh"), **{"rb-0.2.0-field": "profile:first_name"}))
    assert not Segment.objects.exists()  # nothing saved until Save

    # and saves
    response = _press(client, url, page, ("_save", "Save"), **{"rb-0.2.0-op": "is_not_set"})

    # then the segment holds exactly the JSON the grammar reads
    assert response.status_code == 302
    segment = Segment.objects.get(name="Northern regulars")
    assert segment.rules == {"match": "all", "rules": [
        {"type": "region", "op": "in", "values": ["North"]},
        {"match": "any", "rules": [
            {"type": "purchase", "metric": "recency", "op": "within", "days": 90, "channel": "any"},
            {"type": "loyalty", "field": "tier", "op": "in", "values": [gold.pk]},
        ]},
        {"match": "none", "rules": [{"type": "profile", "field": "first_name", "op": "is_not_set"}]},
    ]}


def test_the_json_box_follows_the_builder_after_each_button(client, marketer):
    url = reverse("admin:campaigns_segment_add")
    page = _fields(client.get(url))
    page = _fields(_press(client, url, page, ("rb-action", "add_rule:0")))
    page = _fields(_press(client, url, page, ("rb-action", "refresh"), **{
        "rb-0.0-field": "loyalty:enrolled"}))
    assert json.loads(page["rules"][0]) == {"match": "all", "rules": [
        {"type": "loyalty", "field": "enrolled", "op": "yes"}]}


def test_a_bad_builder_value_is_refused_naming_the_field_and_nothing_is_saved(client, marketer):
    url = reverse("admin:campaigns_segment_add")
    page = _fields(client.get(url))
    page = _fields(_press(client, url, page, ("rb-action", "add_rule:0")))
    page = _fields(_press(client, url, page, ("rb-action", "refresh"), **{"rb-0.0-field": "purchase:recency"}))
    response = _press(client, url, page, ("_save", "Save"), name="Recent", **{"rb-0.0-days": "-3"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "Rule 1 (Bought): Days: write a whole number of days from 1 to 36600." in text
    assert not Segment.objects.exists()
    assert form_fields(text, "segment_form")["rb-0.0-days"] == ["-3"]  # kept as typed


def test_the_json_box_saves_when_ticked_and_is_checked_the_same_way(client, marketer):
    url = reverse("admin:campaigns_segment_add")
    page = _fields(client.get(url))
    bad = _press(client, url, page, ("_save", "Save"), name="Power", rules_from_json="on",
                 rules=json.dumps({"type": "purchase", "metric": "recency", "op": "within", "days": 0}))
    assert bad.status_code == 200
    assert "days is a whole number from 1 to 36600" in bad.content.decode()
    assert not Segment.objects.exists()
    good = {"type": "purchase", "metric": "recency", "op": "within", "since": "2026-01-31", "channel": "store"}
    response = _press(client, url, page, ("_save", "Save"), name="Power", rules_from_json="on", rules=json.dumps(good))
    assert response.status_code == 302
    assert Segment.objects.get(name="Power").rules == good


def test_loading_json_into_the_builder(client, marketer):
    url = reverse("admin:campaigns_segment_add")
    page = _fields(client.get(url))
    rules = {"match": "any", "rules": [{"type": "consent", "channel": "sms", "op": "granted"}]}
    page = _fields(_press(client, url, page, ("rb-action", "load_json"), rules=json.dumps(rules)))
    assert page["rb-0-match"] == ["any"]
    assert page["rb-0.0-channel"] == ["sms"]
    assert "rules_from_json" not in page


def test_saving_an_unchanged_tree_keeps_its_stored_spelling(client, marketer):
    # given a segment stored as a bare rule (no group), as older segments and the API may be
    segment = SegmentFactory(name="Email", rules={"type": "consent", "channel": "email"})
    url = reverse("admin:campaigns_segment_change", args=[segment.pk])
    page = _fields(client.get(url))
    assert page["rb-0.0-field"] == ["consent"]
    # when only the description changes through the builder's page
    response = _press(client, url, page, ("_save", "Save"), description="Email subscribers")
    # then the rules are not rewritten, and the audit shows only the description
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.rules == {"type": "consent", "channel": "email"}
    assert AuditEvent.objects.get(subject_type="segment", subject_id=segment.pk).changes == {
        "description": "Email subscribers"}


def test_a_segment_the_builder_cannot_show_opens_in_the_json_box(client, marketer):
    segment = SegmentFactory(name="Odd")
    Segment.objects.filter(pk=segment.pk).update(rules={"match": "all", "rules": [{"type": "unknown"}]})
    page = client.get(reverse("admin:campaigns_segment_change", args=[segment.pk])).content.decode()
    assert "edited as JSON only" in page
    assert form_fields(page, "segment_form")["rules_from_json"] == ["on"]


def test_live_count_and_builder_endpoints_read_the_builder_fields(client, marketer):
    store = StoreFactory(code="n1", region="North")
    CustomerFactory(home_store=store)
    CustomerFactory()
    fields = {"rb-0-kind": "group", "rb-0-match": "all", "rb-0.0-kind": "rule", "rb-0.0-field": "region",
              "rb-0.0-op": "in", "rb-0.0-values": "North"}
    counted = client.post(reverse("admin:campaigns_segment_count"), fields).json()
    assert counted["total"] == 1
    assert counted["rules"] == {"match": "all", "rules": [{"type": "region", "op": "in", "values": ["North"]}]}
    refused = client.post(reverse("admin:campaigns_segment_count"), {**fields, "rb-0.0-values": []})
    assert refused.status_code == 400
    assert "Values: tick at least one" in refused.json()["error"]
    rebuilt = client.post(reverse("admin:campaigns_segment_builder"), {**fields, "rb-action": "add_group:0"}).json()
    assert 'name="rb-0.1-kind" value="group"' in rebuilt["html"]
    assert 'name="rb-0.1.0-kind" value="rule"' in rebuilt["html"]
    assert not Segment.objects.exists()
