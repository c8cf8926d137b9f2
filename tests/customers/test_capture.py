"""customer_capture: one profile per email and per phone, whatever way they were typed."""

import threading

import pytest
from django.db import connection

from customers.exceptions import CustomerError, InvalidContact, InvalidText
from customers.models import (
    Channel,
    ConsentEvidence,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    Customer,
    MergeProposal,
    Source,
)
from customers.selectors import consent_states_for
from customers.services import ConsentRequest, customer_capture
from customers.services.consent import Evidence
from tests.factories import CustomerFactory, StoreFactory


def checkout(store, clerk):
    return Evidence(method=ConsentMethod.CHECKOUT, store=store, collected_by=clerk)


@pytest.mark.django_db
def test_same_email_in_other_case_and_spacing_updates_one_profile(store, clerk):
    first = customer_capture(
        email="Ana.Lopez@Example.com", first_name="Ana", source=Source.STORE, store=store, clerk=clerk
    )
    for typed in ("  ana.lopez@example.COM ", "ANA.LOPEZ@EXAMPLE.COM"):
        again = customer_capture(email=typed, first_name="Anita", source=Source.WEB)
        assert again.customer.pk == first.customer.pk
        assert not again.created
    assert Customer.objects.count() == 1
    customer = Customer.objects.get()
    assert customer.email == "Ana.Lopez@example.com"  # the first spelling is kept
    assert customer.first_name == "Anita"
    assert customer.source == Source.STORE  # first-seen source never changes
    assert (customer.source_store, customer.source_clerk) == (store, clerk)


@pytest.mark.django_db
def test_same_phone_typed_in_different_formats_is_one_profile(store):
    typed = [
        "(212) 555-0123",
        "212.555.0123",
        "+1 212 555 0123",
        "2125550123",
        "+1-212-555-0123",
        "1 (212) 555-0123",
        "+1 (212) 555 01 23",
    ]
    ids = {customer_capture(phone=raw, source=Source.STORE, store=store).customer.pk for raw in typed}
    assert len(ids) == 1
    assert Customer.objects.get().phone == "+12125550123"


@pytest.mark.django_db
def test_blank_fields_never_overwrite_known_ones(store):
    customer_capture(email="ana@example.com", phone="+12125550123", first_name="Ana", source=Source.STORE, store=store)
    result = customer_capture(email="ana@example.com", first_name="  ", source=Source.STORE, store=store)
    assert (result.customer.first_name, result.customer.phone) == ("Ana", "+12125550123")


@pytest.mark.django_db
def test_email_of_one_profile_and_phone_of_another_proposes_a_merge(store, clerk, disclosures):
    by_email = CustomerFactory(email="ana@example.com", phone=None)
    by_phone = CustomerFactory(email=None, phone="+12125550123")

    result = customer_capture(
        email="ANA@example.com",
        phone="212 555 0123",
        source=Source.STORE,
        store=store,
        clerk=clerk,
        consents=[ConsentRequest(channel="sms", disclosure=disclosures["sms"])],
        evidence=checkout(store, clerk),
    )

    assert result.customer.pk == by_email.pk
    assert result.phone_customer.pk == by_phone.pk
    proposal = MergeProposal.objects.get()
    assert proposal.status == MergeProposal.Status.OPEN
    assert {proposal.customer_id, proposal.other_id} == {by_email.pk, by_phone.pk}
    assert (proposal.store, proposal.proposed_by) == (store, clerk)
    # SMS consent is recorded where the phone lives; the email profile does not take the phone.
    assert consent_states_for(by_phone)["sms"] == ConsentStatus.GRANTED
    assert consent_states_for(by_email)["sms"] == ConsentStatus.NONE
    by_email.refresh_from_db()
    assert by_email.phone is None
    assert Customer.objects.count() == 2
    # A second identical capture does not open a second proposal.
    customer_capture(email="ana@example.com", phone="+12125550123", source=Source.STORE, store=store)
    assert MergeProposal.objects.count() == 1


@pytest.mark.django_db
def test_capture_attributes_the_store_and_clerk_in_the_evidence(store, clerk, disclosures):
    result = customer_capture(
        email="ana@example.com",
        phone="+12125550123",
        source=Source.STORE,
        store=store,
        clerk=clerk,
        consents=[
            ConsentRequest(channel="email", disclosure=disclosures["email"]),
            ConsentRequest(channel="sms", disclosure=disclosures["sms"]),
        ],
        evidence=checkout(store, clerk),
    )
    assert result.created
    for entry in ConsentEvidence.objects.filter(customer=result.customer):
        assert (entry.store, entry.collected_by, entry.method) == (store, clerk, ConsentMethod.CHECKOUT)
        assert entry.disclosure == disclosures[entry.channel]
    customer = result.customer
    assert (customer.home_store, customer.time_zone) == (store, store.time_zone)
    assert consent_states_for(customer) == {"email": "pending", "sms": "granted", "push": "none"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"email": "not-an-email"}, InvalidContact),
        ({"email": "a@localhost"}, InvalidContact),
        ({"phone": "12"}, InvalidContact),
        ({"email": "", "phone": ""}, InvalidContact),
        ({"email": "ana@example.com", "first_name": "A\x00"}, CustomerError),
        ({"email": "ana@example.com", "first_name": "A" * 101}, CustomerError),
        ({"phone": "+12125550123", "consents": [ConsentRequest(channel="email")]}, InvalidContact),
        ({"email": "ana@example.com", "consents": [ConsentRequest(channel="email")]}, CustomerError),
        ({"email": "ana@example.com", "time_zone": "Mars/Olympus"}, CustomerError),
    ],
)
def test_bad_capture_input_raises_and_writes_nothing(kwargs, error, store):
    with pytest.raises(error):
        customer_capture(source=Source.STORE, store=store, **kwargs)
    assert not Customer.objects.exists()
    assert not ConsentEvidence.objects.exists()


@pytest.mark.django_db
def test_phone_only_capture_without_sms_consent_grants_nothing(store, clerk):
    result = customer_capture(phone="+12125550123", source=Source.STORE, store=store, clerk=clerk)
    assert consent_states_for(result.customer) == {"email": "none", "sms": "none", "push": "none"}
    assert not ConsentEvidence.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_capture_of_one_new_email_ends_with_one_row(store, clerk, disclosures, celery_eager):
    spellings = [
        "new.person@example.com",
        "New.Person@example.com",
        " NEW.PERSON@EXAMPLE.COM",
        "new.person@Example.com",
    ]
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    errors, results = [], []

    def capture(index):
        try:
            barrier.wait(timeout=10)
            result = customer_capture(
                email=spellings[index % len(spellings)],
                first_name=f"Name{index}",
                source=Source.STORE,
                store=store,
                clerk=clerk,
                consents=[ConsentRequest(channel="email", disclosure=disclosures["email"])],
                evidence=checkout(store, clerk),
            )
            results.append(result.customer.pk)
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=capture, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(results) == threads_count
    assert len(set(results)) == 1
    assert Customer.objects.count() == 1
    assert ConsentState.objects.filter(channel="email").count() == 1
    assert ConsentEvidence.objects.filter(action="grant").count() == threads_count


# --- bad input that used to get through ----------------------------------------------------------


@pytest.mark.django_db
def test_an_email_with_a_trailing_dot_is_refused_and_attached_to_nobody():
    ann = CustomerFactory(email="ann@example.com", first_name="Ann")
    with pytest.raises(InvalidContact, match="ends with a dot"):
        customer_capture(email="ann@example.com.", first_name="Mallory", source=Source.WEB)
    ann.refresh_from_db()
    assert ann.first_name == "Ann"
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_a_local_number_is_read_in_the_capturing_stores_country():
    london = StoreFactory(country="GB", time_zone="Europe/London")
    result = customer_capture(phone="07911 123456", source=Source.STORE, store=london)
    assert result.customer.phone == "+447911123456"
    # Without a store the default region (US) applies, where this is no valid number.
    with pytest.raises(InvalidContact):
        customer_capture(phone="020 7946 0018", source=Source.WEB)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("phone", "message"),
    [("+44 20 7946 0018", "landline"), ("+1 800 356 9377", "toll-free"), ("+44 7640 123456", "pager")],
)
def test_sms_consent_is_refused_for_a_number_that_cannot_receive_texts(store, clerk, phone, message):
    with pytest.raises(InvalidContact, match=message):
        customer_capture(
            phone=phone,
            source=Source.STORE,
            store=store,
            consents=[ConsentRequest(channel=Channel.SMS)],
            evidence=checkout(store, clerk),
        )
    assert not Customer.objects.exists()
    assert not ConsentEvidence.objects.exists()
    # The same number without SMS consent is kept as a contact.
    assert customer_capture(phone=phone, source=Source.STORE, store=store).customer.phone


@pytest.mark.django_db
@pytest.mark.parametrize(
    "phone", ["1-800-FLOWERS", "(415) 555-2671 ext 12", "+1 900 555 0123"], ids=["vanity", "extension", "premium"]
)
def test_vanity_extension_and_premium_numbers_are_refused(store, phone):
    with pytest.raises(InvalidContact):
        customer_capture(phone=phone, source=Source.STORE, store=store)
    assert not Customer.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize("name", ["Ann\r\nBcc: x", "\u202eAnn", "Ann\u2066x", "Ann\u200b"])
def test_a_name_with_a_line_break_or_invisible_character_is_refused(field, name):
    existing = CustomerFactory(email="a@example.com", first_name="Ann", last_name="Lee")
    with pytest.raises(InvalidText):
        customer_capture(email="a@example.com", source=Source.WEB, **{field: name})
    existing.refresh_from_db()
    assert (existing.first_name, existing.last_name) == ("Ann", "Lee")
