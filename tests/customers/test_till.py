"""The clerk checkout page: login, store choice, capture, look-up, and every way input can be wrong."""

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from customers.models import ConsentEvidence, ConsentMethod, ConsentStatus, Customer, Source, StoreMembership
from customers.selectors import consent_states_for
from tests.factories import ClerkFactory, CustomerFactory, MarketingUserFactory, StoreFactory
from tests.factories.customers import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk_client(client, clerk):
    client.force_login(clerk)
    return client


def capture(client, **data):
    return client.post("/till/", data, REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="TillBrowser")


# --- access ---------------------------------------------------------------------------------------


def test_login_page_answers(client):
    response = client.get("/till/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_a_clerk_logs_in_and_lands_on_the_capture_page(client, clerk, store):
    response = client.post("/till/login/", {"username": clerk.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/till/"
    page = client.get("/till/")
    assert page.status_code == 200
    assert store.name.encode() in page.content


def test_login_is_rate_limited(client, clerk, settings, frozen_minute):
    settings.TANDEM = {**settings.TANDEM, "LOGIN_RATE_LIMIT_PER_MINUTE": 3}
    for _ in range(3):
        assert client.post("/till/login/", {"username": clerk.username, "password": "wrong"}).status_code == 200
    response = client.post("/till/login/", {"username": clerk.username, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_anonymous_users_are_sent_to_the_login(client):
    response = client.get("/till/")
    assert response.status_code == 302
    assert response.url.startswith("/till/login/")
    assert client.post("/till/lookup/", {"email": "a@example.com"}).status_code == 302


@pytest.mark.parametrize("path", ["/admin/", "/admin/customers/customer/", "/admin/auth/user/"])
def test_a_clerk_cannot_open_the_admin(clerk_client, path):
    response = clerk_client.get(path)
    assert response.status_code == 302
    assert response.url == "/till/"


def test_a_clerk_cannot_log_into_the_admin(client, clerk):
    response = client.post("/admin/login/", {"username": clerk.username, "password": PASSWORD})
    assert response.status_code == 200  # the admin's own login refuses non-staff
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").url.startswith("/admin/login/")


def test_marketing_staff_reach_the_admin(client):
    client.force_login(MarketingUserFactory())
    assert client.get("/admin/").status_code == 200


def test_a_user_without_a_store_gets_no_till(client):
    client.force_login(UserFactory())
    response = client.get("/till/")
    assert response.status_code == 403
    assert b"No store assigned" in response.content


def test_a_clerk_with_two_stores_must_choose_and_cannot_pick_another_stores(client, store):
    second = StoreFactory(code="la-mel", name="Melrose", time_zone="America/Los_Angeles")
    foreign = StoreFactory(code="ldn", name="Regent Street", time_zone="Europe/London")
    clerk = ClerkFactory(store=store)
    StoreMembership.objects.create(user=clerk, store=second)
    client.force_login(clerk)

    response = client.get("/till/")
    assert response.status_code == 302
    assert response.url.startswith("/till/store/")
    choose = client.get(response.url)
    assert b"Melrose" in choose.content
    assert b"Regent Street" not in choose.content

    assert client.post("/till/store/", {"store": foreign.pk}).status_code == 403
    assert client.post("/till/store/", {"store": "nonsense"}).status_code == 403
    assert client.get("/till/").status_code == 302  # still nothing chosen

    assert client.post("/till/store/", {"store": second.pk, "next": "https://evil.example/"}).url == "/till/"
    capture(client, email="ana@example.com", store=foreign.pk)
    customer = Customer.objects.get()
    assert customer.source_store == second  # a posted store id is ignored; the session's store is used


# --- capture --------------------------------------------------------------------------------------


def test_the_capture_page_shows_the_disclosures_and_never_pre_ticks(clerk_client, disclosures):
    response = clerk_client.get("/till/")
    html = response.content.decode()
    assert disclosures["email"].text in html
    assert "Reply STOP to opt out" in html
    for name in ("consent_email", "consent_sms"):
        tag = html[html.index(f'name="{name}"') :]
        tag = tag[: tag.index(">")]
        assert "checked" not in tag
        assert "disabled" not in tag


def test_capture_attributes_store_and_clerk_on_profile_and_evidence(clerk_client, clerk, store, disclosures):
    response = capture(
        clerk_client,
        email="Ana.Lopez@Example.com",
        phone="(212) 555-0123",
        first_name="Ana",
        consent_email="on",
        consent_sms="on",
    )
    assert response.status_code == 302
    assert response.url == "/till/done/"
    customer = Customer.objects.get()
    assert (customer.source, customer.source_store, customer.source_clerk, customer.home_store) == (
        Source.STORE,
        store,
        clerk,
        store,
    )
    assert (customer.email, customer.phone) == ("Ana.Lopez@example.com", "+12125550123")
    entries = ConsentEvidence.objects.filter(customer=customer)
    assert {e.channel for e in entries} == {"email", "sms"}
    for entry in entries:
        assert (entry.method, entry.store, entry.collected_by) == (ConsentMethod.CHECKOUT, store, clerk)
        assert entry.disclosure == disclosures[entry.channel]
        assert entry.disclosure_sha256 == disclosures[entry.channel].sha256
        assert (entry.ip_address, entry.user_agent) == ("192.0.2.10", "TillBrowser")

    done = clerk_client.get("/till/done/").content.decode()
    assert "New customer saved" in done
    assert "Pending confirmation" in done
    assert "We sent a confirmation email" in done
    assert "A***@e***.com" in done
    assert "Ana.Lopez@example.com" not in done


def test_capturing_the_same_email_again_updates_the_profile(clerk_client, disclosures):
    capture(clerk_client, email="ana@example.com", first_name="Ana")
    response = capture(clerk_client, email="  ANA@example.com ", first_name="Anna")
    assert response.status_code == 302
    assert Customer.objects.count() == 1
    assert Customer.objects.get().first_name == "Anna"
    assert "Customer updated" in clerk_client.get("/till/done/").content.decode()


def test_a_phone_only_capture_without_the_sms_box_grants_nothing(clerk_client, disclosures):
    assert capture(clerk_client, phone="212 555 0123").status_code == 302
    customer = Customer.objects.get()
    assert consent_states_for(customer)["sms"] == ConsentStatus.NONE
    assert not ConsentEvidence.objects.exists()


def test_sms_consent_without_a_phone_is_an_inline_error(clerk_client, disclosures):
    response = capture(clerk_client, email="ana@example.com", consent_sms="on")
    assert response.status_code == 400
    assert "SMS consent needs a phone number." in response.content.decode()
    assert not Customer.objects.exists()


def test_consent_cannot_be_taken_without_a_published_disclosure(clerk_client):
    response = capture(clerk_client, email="ana@example.com", consent_email="on")
    assert response.status_code == 400
    assert "No consent text is published" in response.content.decode()
    assert not Customer.objects.exists()


def test_a_first_name_with_html_is_shown_escaped(clerk_client, disclosures):
    capture(clerk_client, email="x@example.com", first_name="<script>alert(1)</script>")
    done = clerk_client.get("/till/done/").content.decode()
    assert "<script>alert(1)</script>" not in done
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in done
    response = capture(clerk_client, email="bad", first_name="<img src=x onerror=alert(1)>")
    assert "<img src=x" not in response.content.decode()


LONG_LOCAL = "a" * 64
BAD_INPUTS = [
    ({"email": "plainaddress"}, "exactly one @"),
    ({"email": "two@@example.com"}, "exactly one @"),
    ({"email": f"{LONG_LOCAL}@{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 63}.com"}, "longer than 320"),
    ({"email": "x" * 401}, "at most 400 characters"),
    ({"email": "josé@example.com"}, "plain letters"),
    ({"email": "user@[127.0.0.1]"}, "not an IP address"),
    ({"email": "user@127.0.0.1"}, "not an IP address"),
    ({"email": "user@localhost"}, "needs a dot"),
    ({"email": "us\u200ber@example.com"}, "invisible character"),
    ({"email": "user@example.com\u202e"}, "invisible character"),
    ({"email": "user\x00@example.com"}, "Null characters are not allowed"),
    ({"phone": "12345"}, "not valid"),
    ({"phone": "call me maybe"}, "not a phone number"),
    ({"phone": "+1 212 555 0123\u202e"}, "invisible character"),
    ({"phone": "212\x00555 0123"}, "Null characters are not allowed"),
    ({"email": "ana@example.com", "first_name": "An\x00a"}, "Null characters are not allowed"),
    ({"email": "ana@example.com", "first_name": "A" * 101}, "at most 100 characters"),
    ({"email": "ana@example.com."}, "ends with a dot"),
    ({"phone": "1-800-FLOWERS"}, "letters (as in 1-800-FLOWERS)"),
    ({"phone": "(415) 555-2671 ext 12"}, "without an extension"),
    ({"phone": "+1 900 555 0123"}, "premium-rate"),
    ({"email": "ana@example.com", "first_name": "Ana\r\nBcc: x@example.com"}, "line break or an invisible"),
    ({"email": "ana@example.com", "first_name": "\u202eanA"}, "line break or an invisible"),
    ({"email": "ana@example.com", "first_name": "Ana\u200b"}, "line break or an invisible"),
    ({}, "Enter an email address or a phone number."),
    ({"email": "   ", "phone": "  "}, "Enter an email address or a phone number."),
]


@pytest.mark.parametrize(("data", "message"), BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_bad_input_gets_an_inline_error_and_creates_nothing(clerk_client, disclosures, data, message):
    response = capture(clerk_client, consent_email="on" if data.get("email") else "", **data)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    # The refusal comes first, above the form, announced to screen readers; the form is shown again.
    answer = html.index('data-testid="answer"')
    assert answer < html.index('id="capture-form"')
    assert message in html[answer : html.index('id="capture-form"')]
    assert 'role="alert"' in html[html.rindex("<div", 0, answer) : answer]
    assert not Customer.objects.exists()
    assert not ConsentEvidence.objects.exists()


def test_typo_hint_shows_and_keep_as_typed_saves_it(clerk_client, disclosures):
    response = capture(clerk_client, email="ana@gmial.com", consent_email="on")
    assert response.status_code == 400
    html = response.content.decode()
    assert "ana@gmail.com" in html
    assert "Keep as typed" in html
    assert not Customer.objects.exists()

    response = capture(clerk_client, email="ana@gmial.com", consent_email="on", keep_typed_email="on")
    assert response.status_code == 302
    assert Customer.objects.get().email == "ana@gmial.com"


def test_taking_the_suggestion_saves_the_corrected_address(clerk_client, disclosures):
    capture(clerk_client, email="ana@hotmial.com")
    assert capture(clerk_client, email="ana@hotmail.com").status_code == 302
    assert Customer.objects.get().email == "ana@hotmail.com"


def test_capture_is_rate_limited_per_clerk(clerk_client, settings, disclosures, frozen_minute):
    settings.TANDEM = {**settings.TANDEM, "CAPTURE_RATE_LIMIT_PER_MINUTE": 2}
    assert capture(clerk_client, email="a1@example.com").status_code == 302
    assert capture(clerk_client, email="a2@example.com").status_code == 302
    response = capture(clerk_client, email="a3@example.com")
    assert response.status_code == 429
    assert "Too many captures" in response.content.decode()
    assert Customer.objects.count() == 2


def test_capture_needs_a_csrf_token(clerk, disclosures):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk)
    assert client.post("/till/", {"email": "ana@example.com"}).status_code == 403
    assert client.post("/till/lookup/", {"email": "ana@example.com"}).status_code == 403
    assert not Customer.objects.exists()
    client.get("/till/")
    token = client.cookies["csrftoken"].value
    response = client.post("/till/", {"email": "ana@example.com", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Customer.objects.count() == 1


def test_capture_runs_in_a_bounded_number_of_queries(clerk_client, disclosures, django_assert_max_num_queries):
    CustomerFactory(email="ana@example.com", phone=None)
    with django_assert_max_num_queries(45):
        response = capture(
            clerk_client, email="ana@example.com", phone="+12125550123", consent_email="on", consent_sms="on"
        )
    assert response.status_code == 302


# --- look-up --------------------------------------------------------------------------------------


def test_lookup_returns_only_a_first_name_and_masked_contacts(clerk_client):
    CustomerFactory(
        email="Ana.Lopez@example.com", phone="+12125550123", first_name="Ana", last_name="Lopez", birthday="1990-01-02"
    )
    data = clerk_client.post("/till/lookup/", {"email": "ana.lopez@EXAMPLE.com"}).json()
    assert data == {
        "found": True,
        "first_name": "Ana",
        "email": "A***@e***.com",
        "phone": "+1••• ••• 23",
        "consent": {"email": "Not asked", "sms": "Not asked", "push": "Not asked"},
    }
    assert clerk_client.post("/till/lookup/", {"phone": "(212) 555-0123"}).json()["first_name"] == "Ana"
    assert clerk_client.post("/till/lookup/", {"email": "nobody@example.com"}).json() == {"found": False}


def test_lookup_refuses_bad_input_and_get(clerk_client):
    assert clerk_client.post("/till/lookup/", {"email": "bad"}).status_code == 400
    assert clerk_client.post("/till/lookup/", {}).status_code == 400
    assert clerk_client.get("/till/lookup/", {"email": "a@example.com"}).status_code == 405


def test_lookup_is_rate_limited(clerk_client, frozen_minute):
    for _ in range(60):
        clerk_client.post("/till/lookup/", {"email": "a@example.com"})
    response = clerk_client.post("/till/lookup/", {"email": "a@example.com"})
    assert response.status_code == 429


def test_the_clerk_is_told_when_an_address_is_on_the_do_not_contact_list(clerk_client, disclosures):
    from customers.services import suppression_add

    suppression_add(channel="email", address="gone@example.com", reason="hard_bounce")
    assert capture(clerk_client, email="Gone@example.com", consent_email="on").status_code == 302
    done = clerk_client.get("/till/done/").content.decode()
    assert "do-not-contact list" in done


def test_a_clerk_removed_from_the_store_loses_the_till_at_once(clerk_client, clerk):
    assert clerk_client.get("/till/").status_code == 200
    StoreMembership.objects.filter(user=clerk).delete()
    assert clerk_client.get("/till/").status_code == 403
    assert capture(clerk_client, email="ana@example.com").status_code == 403
    assert not Customer.objects.exists()


def test_the_clerk_sees_that_a_merge_was_proposed(clerk_client, disclosures):
    CustomerFactory(email="ana@example.com", phone=None)
    CustomerFactory(email=None, phone="+12125550123")
    response = capture(clerk_client, email="ana@example.com", phone="212-555-0123", consent_sms="on")
    assert response.status_code == 302
    done = clerk_client.get("/till/done/").content.decode()
    assert "marketing will review merging them" in done
    assert Customer.objects.count() == 2


@settings_(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    email=st.one_of(st.text(max_size=330), st.emails()),
    phone=st.one_of(st.text(max_size=45), st.from_regex(r"\+?[0-9 ()\-.]{3,20}", fullmatch=True)),
    first_name=st.text(max_size=120),
)
def test_no_typed_input_breaks_the_capture_page(clerk_client, disclosures, settings, email, phone, first_name):
    settings.TANDEM = {**settings.TANDEM, "CAPTURE_RATE_LIMIT_PER_MINUTE": 10_000}
    before = Customer.objects.count()
    response = capture(clerk_client, email=email, phone=phone, first_name=first_name, consent_email="on")
    if response.status_code == 302:
        assert response.url == reverse("till:capture-done")
        assert Customer.objects.count() in (before, before + 1)
    else:
        assert response.status_code == 400
        assert Customer.objects.count() == before
        html = response.content.decode()
        assert 'data-testid="answer"' in html


def test_the_public_confirm_page_is_rate_limited(client, frozen_minute):
    for _ in range(60):
        client.get("/c/confirm/nonsense/")
    response = client.get("/c/confirm/nonsense/")
    assert response.status_code == 429


# --- bad input that used to get through ----------------------------------------------------------


def test_a_trailing_dot_does_not_reach_another_persons_profile(clerk_client, disclosures):
    ann = CustomerFactory(email="ann@example.com", first_name="Ann")
    response = capture(clerk_client, email="ann@example.com.", first_name="Mallory", consent_email="on")
    assert response.status_code == 400
    assert "ends with a dot" in response.content.decode()
    ann.refresh_from_db()
    assert ann.first_name == "Ann"
    assert not ConsentEvidence.objects.exists()


def test_sms_consent_for_a_landline_is_an_inline_error_saying_why(clerk_client, disclosures):
    response = capture(clerk_client, phone="+44 20 7946 0018", consent_sms="on")
    assert response.status_code == 400
    html = response.content.decode()
    assert "SMS consent needs a mobile number; this is a landline" in html
    assert not Customer.objects.exists()
    # Without the box, the landline is kept as a contact.
    assert capture(clerk_client, phone="+44 20 7946 0018").status_code == 302
    assert Customer.objects.get().phone == "+442079460018"


def test_a_local_number_is_read_in_the_country_of_the_clerks_store(client, disclosures):
    london = StoreFactory(code="ldn", country="GB", time_zone="Europe/London")
    client.force_login(ClerkFactory(store=london))
    response = capture(client, phone="07911 123456", consent_sms="on")
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert customer.phone == "+447911123456"
    assert consent_states_for(customer)["sms"] == ConsentStatus.GRANTED
    found = client.post("/till/lookup/", {"phone": "07911 123456"}).json()
    assert found["found"] is True
