"""Customer admin: pages render for marketing staff, search, filters, timeline, editing via the service."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from customers.models import Channel, ConsentEvidence, ConsentMethod, ConsentStatus, Customer, MergeProposal
from customers.roles import MARKETING
from customers.selectors import TimelineEntry
from customers.services.consent import Evidence, consent_grant, consent_withdraw, suppression_add
from customers.services.importing import customer_import_create
from customers.timeline_sources import timeline_source_register, timeline_source_unregister
from tests.factories import (
    CustomerFactory,
    DisclosureFactory,
    MarketingUserFactory,
    PurchaseFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.force_login(user)
    return user


def changelist(model="customer"):
    return reverse(f"admin:customers_{model}_changelist")


def change(obj):
    return reverse(f"admin:customers_{obj._meta.model_name}_change", args=[obj.pk])


def grant(customer, channel, user, basis="Signed paper form"):
    return consent_grant(
        customer=customer,
        channel=channel,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=user, basis=basis),
    )


def test_marketing_user_is_in_group_and_staff(marketer):
    assert marketer.is_staff
    assert marketer.groups.filter(name=MARKETING).exists()
    assert not marketer.is_superuser


def test_every_customers_admin_page_renders_for_marketing(client, marketer, store, clerk, disclosures):
    customer = CustomerFactory(phone="+14155552671", home_store=store)
    other = CustomerFactory()
    grant(customer, Channel.EMAIL, marketer)
    purchase = PurchaseFactory(customer=customer)
    suppression = suppression_add(channel=Channel.EMAIL, address="gone@example.com", reason="manual")
    proposal = MergeProposal.objects.create(customer=customer, other=other, reason="same person?")
    customer_import = customer_import_create(file_name="a.csv", data=b"email\nann@example.com\n")
    web_grant = consent_grant(
        customer=other,
        channel=Channel.EMAIL,
        evidence=Evidence(
            method=ConsentMethod.WEB_FORM, disclosure=disclosures["email"], url="https://x.example", ip_address="::1"
        ),
    )
    evidence = ConsentEvidence.objects.first()
    state = customer.consent_states.first()
    pages = [
        changelist(),
        change(customer),
        changelist("consentevidence"),
        change(evidence),
        changelist("consentstate"),
        change(state),
        changelist("consentconfirmation"),
        change(web_grant.confirmation),
        changelist("disclosuretext"),
        reverse("admin:customers_disclosuretext_add"),
        change(disclosures["email"]),
        changelist("suppression"),
        reverse("admin:customers_suppression_add"),
        change(suppression),
        changelist("mergeproposal"),
        change(proposal),
        changelist("store"),
        reverse("admin:customers_store_add"),
        change(store),
        changelist("purchase"),
        reverse("admin:customers_purchase_add"),
        change(purchase),
        changelist("customerimport"),
        reverse("admin:customers_customerimport_add"),
        change(customer_import),
        reverse("admin:index"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url


def test_clerk_requesting_admin_is_sent_to_the_till(client, clerk):
    client.force_login(clerk)
    response = client.get(reverse("admin:customers_customer_changelist"))
    assert response.status_code == 302
    assert response.url == reverse("till:capture")
    assert client.get("/admin/").url == reverse("till:capture")


def test_staff_without_marketing_group_cannot_see_customers(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True))
    assert client.get(changelist()).status_code == 403


def test_setup_roles_command_creates_groups():
    from io import StringIO

    from django.core.management import call_command

    Group.objects.all().delete()
    out = StringIO()
    call_command("setup_roles", stdout=out)
    assert set(Group.objects.values_list("name", flat=True)) == {"Marketing", "Store manager", "Clerk"}
    marketing = Group.objects.get(name="Marketing")
    codenames = set(marketing.permissions.values_list("codename", flat=True))
    assert {"view_customer", "change_customer", "view_consentevidence"} <= codenames
    assert "change_consentevidence" not in codenames
    assert "delete_customer" not in codenames
    assert not Group.objects.get(name="Clerk").permissions.exists()
    assert "Marketing" in out.getvalue()


# --- search and filters ---------------------------------------------------------------------------


def _names(response):
    return {c.pk for c in response.context["cl"].result_list}


def test_search_by_phone_in_any_spelling(client, marketer):
    ann = CustomerFactory(phone="+14155552671")
    CustomerFactory(phone="+14155552672")
    for term in ["(415) 555-2671", "+1 415 555 2671", "4155552671"]:
        assert _names(client.get(changelist(), {"q": term})) == {ann.pk}, term


def test_search_by_email_normalised_and_by_name(client, marketer):
    ann = CustomerFactory(email="Ann.Lee@example.com", first_name="Ann", last_name="Lee")
    bob = CustomerFactory(email="bob@example.org", first_name="Bob", last_name="Stone")
    assert _names(client.get(changelist(), {"q": "  ann.lee@EXAMPLE.COM "})) == {ann.pk}
    assert _names(client.get(changelist(), {"q": "bob stone"})) == {bob.pk}
    assert _names(client.get(changelist(), {"q": "example.org"})) == {bob.pk}
    assert _names(client.get(changelist(), {"q": str(ann.public_id)})) == {ann.pk}


def test_filters_by_consent_status_per_channel(client, marketer):
    granted, withdrawn, never = CustomerFactory(), CustomerFactory(), CustomerFactory()
    grant(granted, Channel.EMAIL, marketer)
    grant(withdrawn, Channel.EMAIL, marketer)
    consent_withdraw(customer=withdrawn, channel=Channel.EMAIL, evidence=Evidence(method=ConsentMethod.ADMIN))
    assert _names(client.get(changelist(), {"consent_email": "granted"})) == {granted.pk}
    assert _names(client.get(changelist(), {"consent_email": "withdrawn"})) == {withdrawn.pk}
    assert _names(client.get(changelist(), {"consent_email": "none"})) == {never.pk}
    assert _names(client.get(changelist(), {"consent_sms": "none"})) == {granted.pk, withdrawn.pk, never.pk}


def test_filters_by_store_source_and_suppression(client, marketer):
    north, south = StoreFactory(), StoreFactory()
    a = CustomerFactory(home_store=north, source="store")
    b = CustomerFactory(home_store=south, source="import", email="blocked@example.com")
    suppression_add(channel=Channel.EMAIL, address="blocked@example.com", reason="hard_bounce")
    assert _names(client.get(changelist(), {"home_store__id__exact": north.pk})) == {a.pk}
    assert _names(client.get(changelist(), {"source__exact": "import"})) == {b.pk}
    assert _names(client.get(changelist(), {"suppressed": "yes"})) == {b.pk}
    assert _names(client.get(changelist(), {"suppressed": "no"})) == {a.pk}


def test_changelist_shows_consent_columns(client, marketer):
    customer = CustomerFactory(first_name="Zed", last_name="Quux")
    grant(customer, Channel.EMAIL, marketer)
    content = client.get(changelist()).content.decode()
    assert "Zed Quux" in content
    assert "Granted" in content
    assert "Not asked" in content


def test_changelist_query_count_is_bounded(client, marketer, django_assert_max_num_queries):
    stores = StoreFactory.create_batch(3)
    for index in range(30):
        customer = CustomerFactory(home_store=stores[index % 3], phone=f"+1415555{index:04d}")
        grant(customer, Channel.EMAIL, marketer)
    with django_assert_max_num_queries(10):  # 8 measured, independent of the row count
        response = client.get(changelist())
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 30


# --- change page: timeline and editing -------------------------------------------------------------


def test_timeline_shows_evidence_purchases_and_extra_sources(client, marketer, store, clerk, disclosures):
    customer = CustomerFactory(first_name="Ana")
    consent_grant(
        customer=customer,
        channel=Channel.EMAIL,
        evidence=Evidence(
            method=ConsentMethod.WEB_FORM,
            disclosure=disclosures["email"],
            url="https://shop.example.com/signup",
            ip_address="203.0.113.9",
            user_agent="Mozilla/5.0 <script>alert(1)</script>",
        ),
    )
    grant(customer, Channel.PUSH, marketer, basis="Phone call")
    PurchaseFactory(customer=customer, external_ref="R-778", store=store, channel="store", source="till")

    def loyalty_source(profile_ids):
        assert customer.pk in profile_ids
        return [
            TimelineEntry(at=timezone.now(), kind="loyalty", title="Earned 10 points", details={"Rule": "<b>x</b>"})
        ]

    timeline_source_register("test.loyalty", loyalty_source)
    try:
        response = client.get(change(customer))
    finally:
        timeline_source_unregister("test.loyalty")
    content = response.content.decode()
    assert "360° timeline" in content
    assert "Email consent granted" in content
    assert "Web form" in content
    assert "203.0.113.9" in content
    assert disclosures["email"].sha256[:12] in content
    assert "v1" in content
    assert "Phone call" in content
    assert "R-778" in content
    assert "Earned 10 points" in content
    # Everything a customer or provider sent is escaped.
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "<b>x</b>" not in content


def test_change_page_escapes_html_in_names(client, marketer):
    customer = CustomerFactory(first_name="<img src=x onerror=alert(1)>")
    content = client.get(change(customer)).content.decode()
    assert "<img src=x onerror" not in content


def test_change_page_has_no_editable_consent_field(client, marketer):
    customer = CustomerFactory()
    response = client.get(change(customer))
    form = response.context["adminform"].form
    assert not any("consent" in name for name in form.fields)
    assert set(form.fields) == {
        "email",
        "phone",
        "first_name",
        "last_name",
        "locale",
        "time_zone",
        "birthday",
        "home_store",
        "attributes",
    }


def _post_change(client, customer, **overrides):
    data = {
        "email": customer.email or "",
        "phone": customer.phone or "",
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "locale": customer.locale,
        "time_zone": customer.time_zone,
        "birthday": customer.birthday.isoformat() if customer.birthday else "",
        "home_store": customer.home_store_id or "",
        "attributes": "{}",
        "_save": "Save",
    }
    data.update(overrides)
    return client.post(change(customer), data)


def test_editing_email_and_phone_normalises_and_recomputes_hashes(client, marketer):
    from customers.normalization import address_hmac

    customer = CustomerFactory(email="old@example.com")
    response = _post_change(client, customer, email="  New.Person@EXAMPLE.com ", phone="(415) 555-2671")
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "New.Person@example.com"
    assert customer.phone == "+14155552671"
    assert customer.email_hmac == address_hmac("email", "new.person@example.com")
    assert customer.phone_hmac == address_hmac("sms", "+14155552671")
    assert customer.time_zone == "America/Los_Angeles"
    assert customer.time_zone_source == Customer.TimeZoneSource.PHONE


def test_editing_refuses_an_address_another_profile_holds(client, marketer):
    CustomerFactory(email="taken@example.com", phone="+14155552671")
    customer = CustomerFactory(email="mine@example.com")
    response = _post_change(client, customer, email="TAKEN@example.com")
    assert response.status_code == 200
    assert "already has this email" in response.content.decode()
    response = _post_change(client, customer, phone="415-555-2671")
    assert "already has this phone" in response.content.decode()
    customer.refresh_from_db()
    assert customer.email == "mine@example.com"
    assert customer.phone is None


def test_editing_refuses_malformed_values(client, marketer):
    customer = CustomerFactory(email="mine@example.com")
    for field, value in [("email", "not-an-email"), ("phone", "12"), ("time_zone", "Mars/Base"), ("locale", "<x>")]:
        response = _post_change(client, customer, **{field: value})
        assert response.status_code == 200, field
        assert response.context["adminform"].form.errors.get(field), field
    customer.refresh_from_db()
    assert customer.email == "mine@example.com"


def test_editing_refuses_to_clear_the_only_contact(client, marketer):
    customer = CustomerFactory(email="only@example.com", phone=None)
    response = _post_change(client, customer, email="")
    assert response.status_code == 200
    assert "A profile needs an email address or a phone number" in response.content.decode()
    assert response.context["adminform"].form.non_field_errors()
    customer.refresh_from_db()
    assert customer.email == "only@example.com"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "new@example.com.", "ends with a dot"),
        ("phone", "1-800-FLOWERS", "letters"),
        ("phone", "(415) 555-2671 ext 12", "extension"),
        ("first_name", "Ann\r\nLee", "line break"),
        ("last_name", "Lee\u202e", "invisible character"),
    ],
)
def test_editing_refuses_trailing_dots_unusable_phones_and_hidden_characters(client, marketer, field, value, message):
    customer = CustomerFactory(email="mine@example.com", first_name="Ann", last_name="Lee")
    response = _post_change(client, customer, **{field: value})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.get(field)
    assert errors
    assert message in " ".join(errors)
    customer.refresh_from_db()
    assert (customer.email, customer.phone, customer.first_name, customer.last_name) == (
        "mine@example.com",
        None,
        "Ann",
        "Lee",
    )


def test_a_phone_typed_longer_than_its_stored_form_is_accepted(client, marketer):
    customer = CustomerFactory(email="mine@example.com")
    response = _post_change(client, customer, phone="+1 (415) 555-2671")
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.phone == "+14155552671"


def test_changing_the_email_withdraws_the_consent_given_for_the_old_one(client, marketer):
    customer = CustomerFactory(email="old@example.com")
    grant(customer, Channel.EMAIL, marketer)
    response = _post_change(client, customer, email="new@example.com")
    messages = [str(m) for m in client.get(response.url).context["messages"]]
    assert any("Email consent was withdrawn" in m for m in messages)
    customer.refresh_from_db()
    state = customer.consent_states.get(channel=Channel.EMAIL)
    assert state.status == ConsentStatus.WITHDRAWN
    assert state.last_evidence.address == "new@example.com"
    assert "previous address" in state.last_evidence.note


def test_editing_a_name_keeps_consent(client, marketer):
    customer = CustomerFactory(email="same@example.com")
    grant(customer, Channel.EMAIL, marketer)
    _post_change(client, customer, first_name="Renamed")
    customer.refresh_from_db()
    assert customer.first_name == "Renamed"
    assert customer.consent_states.get(channel=Channel.EMAIL).status == ConsentStatus.GRANTED


def test_customer_cannot_be_added_or_deleted_in_admin(client, marketer):
    customer = CustomerFactory()
    assert client.get(reverse("admin:customers_customer_add")).status_code == 403
    assert client.get(reverse("admin:customers_customer_delete", args=[customer.pk])).status_code == 403


def test_disclosure_added_through_publish_and_read_only_after(client, marketer):
    DisclosureFactory(channel="sms", version=3, text="Old words")
    response = client.post(
        reverse("admin:customers_disclosuretext_add"),
        {"channel": "sms", "locale": "en", "text": "  New texts, reply STOP to opt out.  ", "_save": "Save"},
    )
    assert response.status_code == 302
    from customers.models import DisclosureText

    newest = DisclosureText.objects.filter(channel="sms").order_by("-version").first()
    assert newest.version == 4
    assert newest.text == "New texts, reply STOP to opt out."
    assert newest.created_by == marketer
    import hashlib

    assert newest.sha256 == hashlib.sha256(newest.text.encode()).hexdigest()
    # Read only afterwards: a POST changes nothing, and it cannot be deleted.
    client.post(change(newest), {"channel": "sms", "locale": "en", "text": "Edited"})
    newest.refresh_from_db()
    assert newest.text == "New texts, reply STOP to opt out."
    assert client.get(reverse("admin:customers_disclosuretext_delete", args=[newest.pk])).status_code == 403


def test_consent_evidence_admin_is_read_only(client, marketer):
    customer = CustomerFactory()
    entry = grant(customer, Channel.EMAIL, marketer)
    assert client.get(reverse("admin:customers_consentevidence_add")).status_code == 403
    assert client.get(reverse("admin:customers_consentevidence_delete", args=[entry.pk])).status_code == 403
    response = client.get(change(entry))
    assert response.status_code == 200
    assert not response.context["adminform"].form.fields
    filtered = client.get(changelist("consentevidence"), {"method__exact": "admin", "channel__exact": "email"})
    assert list(filtered.context["cl"].result_list) == [entry]


def test_changelist_links_use_the_public_id(client, marketer):
    customer = CustomerFactory()
    content = client.get(changelist()).content.decode()
    by_public_id = reverse("admin:customers_customer_change", args=[str(customer.public_id)])
    assert by_public_id in content
    assert reverse("admin:customers_customer_change", args=[customer.pk]) not in content
    response = client.get(by_public_id)
    assert response.status_code == 200
    assert response.context["original"] == customer


def test_change_page_query_count_does_not_grow_with_history(client, marketer, django_assert_max_num_queries):
    customer = CustomerFactory(phone="+14155552671")
    for index in range(20):
        grant(customer, Channel.EMAIL, marketer, basis=f"form {index}")
        consent_withdraw(customer=customer, channel=Channel.EMAIL, evidence=Evidence(method=ConsentMethod.ADMIN))
        PurchaseFactory(customer=customer)
    with django_assert_max_num_queries(30):
        response = client.get(change(customer))
    assert len(response.context["timeline"]) == 60


def test_store_with_membership_inline(client, marketer):
    from customers.models import Store, StoreMembership
    from tests.factories import UserFactory

    clerk_user = UserFactory()
    response = client.post(
        reverse("admin:customers_store_add"),
        {
            "code": "sf-union",
            "name": "Union Square",
            "street": "1 Union Sq",
            "city": "San Francisco",
            "postal_code": "94108",
            "state": "CA",
            "country": "US",
            "time_zone": "America/Los_Angeles",
            "region": "West",
            "is_active": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": clerk_user.pk,
            "memberships-0-role": "clerk",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    store = Store.objects.get(code="sf-union")
    assert StoreMembership.objects.get(store=store).user == clerk_user
    bad = client.post(reverse("admin:customers_store_add"), {"code": "x", "time_zone": "Mars/Base"})
    assert bad.status_code == 200
    assert "IANA time zone" in bad.content.decode()


def test_publishing_the_same_disclosure_text_again_adds_no_version(client, marketer):
    from customers.models import DisclosureText

    text = DisclosureFactory(channel="email", version=1, text="Same words").text
    response = client.post(
        reverse("admin:customers_disclosuretext_add"),
        {"channel": "email", "locale": "en", "text": text, "_save": "Save"},
        follow=True,
    )
    assert DisclosureText.objects.count() == 1
    assert any("nothing new was published" in str(m) for m in response.context["messages"])


def test_search_by_last_digits_of_a_phone(client, marketer):
    ann = CustomerFactory(phone="+14155552671")
    CustomerFactory(phone="+14155552672")
    assert _names(client.get(changelist(), {"q": "2671"})) == {ann.pk}
    assert _names(client.get(changelist(), {"q": "555-2671"})) == {ann.pk}
