"""The subject-access export (JSON) holds every personal record we keep, and a new model holding a
customer cannot be left out of it unnoticed."""

import json

import pytest
from django.apps import apps
from django.db import models

from customers.export_sources import export_covered_models
from customers.models import Customer
from customers.selectors import customer_export_data, customer_profile_ids
from tests.customers.person_record import person_with_everything

pytestmark = pytest.mark.django_db

# Models with a foreign key to Customer that the export leaves out on purpose, and why.
NOT_EXPORTED = {
    # A rolling count of messages reserved per cap rule and day, derived from the deliveries (which are
    # exported) and of no meaning to the person on its own.
    "campaigns.FrequencyCounter",
}


def _customer_foreign_keys() -> dict[str, list[str]]:
    """Model label → names of its foreign keys (and one-to-ones) to Customer, over the whole registry."""
    found: dict[str, list[str]] = {}
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, models.ForeignKey) and field.related_model is Customer:
                found.setdefault(model._meta.label, []).append(field.name)
    return found


def test_every_model_holding_a_customer_is_covered_by_the_export():
    holders = set(_customer_foreign_keys())
    covered = export_covered_models()
    missing = holders - NOT_EXPORTED - set(covered)
    assert not missing, f"add these to an export source (customers.export_sources) or to NOT_EXPORTED: {missing}"
    assert holders >= NOT_EXPORTED, "NOT_EXPORTED names a model that no longer holds a customer"
    assert set(covered) <= holders | {"customers.Customer"}


def test_the_export_holds_a_section_for_every_table_the_person_has_rows_in(disclosures):
    # Given a person with rows in every table that holds a customer
    ben = person_with_everything(disclosures=disclosures)["customer"]
    ids = customer_profile_ids(ben)
    # When their data is exported
    data = json.loads(json.dumps(customer_export_data(ben)))
    # Then every covered model with rows for them has a non-empty section
    for label, section in export_covered_models().items():
        model = apps.get_model(label)
        rows = 0
        for field in _customer_foreign_keys()[label]:
            rows += model._default_manager.filter(**{f"{field}__in": ids}).count()
        assert rows, f"the fixture has no {label} row: extend person_with_everything"
        value = data[section]
        if isinstance(value, dict):
            value = [item for items in value.values() for item in items]
        assert value, f"{label} rows are missing from the export section {section!r}"


def test_the_export_content_of_loyalty_messages_and_merges(disclosures):
    record = person_with_everything(disclosures=disclosures)
    data = json.loads(json.dumps(customer_export_data(record["customer"])))

    assert data["profile"]["first_name"] == "Ben"
    assert data["profile"]["max_messages_per_week"] == 2
    assert data["consent"] == {"email": "pending", "sms": "withdrawn", "push": "granted"}
    assert {entry["method"] for entry in data["consent_evidence"]} >= {"checkout", "sms_keyword", "admin"}
    assert data["consent_confirmations"][0]["status"] in {"queued", "sent"}
    assert {entry["action"] for entry in data["preference_evidence"]} == {"frequency_set", "category_left", "paused"}
    assert data["category_opt_outs"] == [
        {
            "profile": data["profile"]["id"],
            "category": "event",
            "created_at": data["category_opt_outs"][0]["created_at"],
        }
    ]
    assert {p["reference"] for p in data["purchases"]} == {"WEB-1", "SOHO-7", "SOHO-3"}
    merged = data["merge_history"]["merged_profiles"]
    assert [profile["email"] for profile in merged] == ["benny@example.com"]
    assert data["merge_history"]["merge_proposals"][0]["reason"] == "Same card at the till?"

    (account,) = data["loyalty_accounts"]
    assert account["card_number"] == record["account"].card_number
    assert account["tier"] == "Silver"
    assert {entry["kind"] for entry in account["ledger"]} >= {"earn", "reverse", "redeem"}
    assert sum(entry["points"] for entry in account["ledger"]) == account["points_balance"]
    assert account["coupon_codes"]
    assert account["tier_changes"]
    assert data["loyalty_redemptions"][0]["order_reference"] == "WEB-2"

    (delivery,) = data["deliveries"]
    assert delivery["sent_by"] == "campaign “Spring sale”"
    assert delivery["events"][0]["kind"] == "opened"
    assert data["sms_opt_out_reviews"][0]["body"] == "please stop texting me"
    assert {device["kind"] for device in data["push_devices"]} == {"app", "browser"}
    assert data["segment_memberships"][0]["segment"] == "VIP upload"
    # A device's push token is a credential of the device, not needed to know what we hold.
    assert "tok-1" not in json.dumps(data)
