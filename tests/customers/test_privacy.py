"""Erasure and the right of access."""

import json

import pytest

from customers.models import ConsentEvidence, ConsentMethod, ConsentStatus, Customer, Purchase, Source, Suppression
from customers.normalization import address_hmac
from customers.selectors import consent_states_for, customer_export_data, customer_is_reachable
from customers.services import ConsentRequest, consent_grant, customer_capture, customer_erase
from customers.services.consent import Evidence
from tests.factories import CustomerFactory, MarketingUserFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(store, clerk, disclosures):
    customer = CustomerFactory(email="Ana.Lopez@example.com", phone="+12125550123", first_name="Ana", last_name="Lopez")
    consent_grant(
        customer=customer,
        channel="sms",
        evidence=Evidence(
            method=ConsentMethod.WEB_FORM,
            disclosure=disclosures["sms"],
            url="https://shop.example.com/join",
            ip_address="198.51.100.7",
            user_agent="Firefox",
        ),
    )
    PurchaseFactory.create_batch(2, customer=customer)
    return customer


def test_erase_pseudonymises_keeps_purchases_and_suppresses_the_addresses(person):
    old_public_id = person.public_id
    erased = customer_erase(customer=person, user=MarketingUserFactory())

    erased.refresh_from_db()
    assert erased.erased_at is not None
    assert (erased.email, erased.phone, erased.first_name, erased.last_name) == (None, None, "", "")
    assert erased.public_id != old_public_id
    assert Purchase.objects.filter(customer=erased).count() == 2
    assert Suppression.objects.filter(channel="email", address_hmac=address_hmac("email", "ana.lopez@example.com"))
    assert Suppression.objects.filter(channel="sms", address_hmac=address_hmac("sms", "+12125550123"))
    assert set(consent_states_for(erased).values()) == {ConsentStatus.WITHDRAWN}
    for entry in ConsentEvidence.objects.filter(customer=erased):
        assert (entry.ip_address, entry.user_agent, entry.address, entry.url) == (None, "", "", "")
    assert "Ana" not in json.dumps(customer_export_data(erased))
    assert not Customer.objects.filter(public_id=old_public_id).exists()


def test_erase_is_idempotent(person):
    user = MarketingUserFactory()
    customer_erase(customer=person, user=user)
    evidence_count = ConsentEvidence.objects.count()
    customer_erase(customer=person, user=user)
    assert ConsentEvidence.objects.count() == evidence_count
    assert Suppression.objects.count() == 2


def test_a_later_capture_of_an_erased_address_is_marked_suppressed(person, store, clerk, disclosures):
    customer_erase(customer=person, user=MarketingUserFactory())

    result = customer_capture(
        email="ana.lopez@EXAMPLE.com",
        phone="(212) 555-0123",
        source=Source.IMPORT,
        consents=[ConsentRequest(channel="email"), ConsentRequest(channel="sms")],
        evidence=Evidence(method=ConsentMethod.IMPORT, basis="Old loyalty list"),
    )

    assert result.created  # the erased profile is never revived
    assert result.suppressed == {"email", "sms"}
    assert consent_states_for(result.customer)["email"] == ConsentStatus.GRANTED
    assert not customer_is_reachable(customer=result.customer, channel="email")
    assert not customer_is_reachable(customer=result.customer, channel="sms")


def test_export_holds_everything_about_the_person_as_json(person):
    data = json.loads(json.dumps(customer_export_data(person)))
    assert data["profile"]["email"] == "Ana.Lopez@example.com"
    assert data["profile"]["id"] == str(person.public_id)
    assert data["consent"]["sms"] == "granted"
    assert data["consent_evidence"][0]["ip_address"] == "198.51.100.7"
    assert data["consent_evidence"][0]["disclosure_text"].startswith("Marketing texts")
    assert len(data["purchases"]) == 2
    assert "pk" not in data["profile"]


def test_erasure_removes_the_name_from_the_admin_history(person):
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    marketer = MarketingUserFactory()
    LogEntry.objects.log_actions(
        user_id=marketer.pk, queryset=Customer.objects.filter(pk=person.pk), action_flag=CHANGE, change_message="x"
    )
    assert LogEntry.objects.filter(object_repr__contains="Lopez").exists()

    customer_erase(customer=person, user=marketer)

    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(person.pk)
    )
    assert entries.exists()
    assert not entries.filter(object_repr__contains="Lopez").exists()
