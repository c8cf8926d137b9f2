"""A repeat that arrives while the first call is still in flight answers like the first call.

Raced by real processes on PostgreSQL (``tests.concurrency.race``), several times each.
"""

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import ConsentConfirmation, ConsentEvidence, ConsentState, ConsentStatus, Customer, Source
from customers.selectors import customer_is_reachable
from customers.services import customer_capture
from customers.services.consent import confirmation_token_make
from tests.concurrency import errors, race
from tests.factories import ClerkFactory, CustomerFactory, StoreFactory
from tests.factories.customers import PASSWORD

REPETITIONS = 10

pytestmark = pytest.mark.postgres


@pytest.fixture
def tills(transactional_db, disclosures):
    """Two clerks at two stores, each logged in on their own till."""
    clients = []
    for code in ("race-a", "race-b"):
        clerk = ClerkFactory(store=StoreFactory(code=code))
        client = Client(raise_request_exception=False)
        assert client.login(username=clerk.username, password=PASSWORD)
        clients.append(client)
    return clients


def _checkout_capture(till: Client, email: str):
    response = till.post(reverse("till:capture"), {"email": email, "first_name": "Ana", "consent_email": "on"})
    return response.status_code


def test_two_clicks_on_the_same_confirmation_link_at_once_both_see_confirmed(tills):
    for i in range(REPETITIONS):
        email = f"click-{i}@example.com"
        assert _checkout_capture(tills[0], email) == 302
        confirmation = ConsentConfirmation.objects.get(customer__email=email)
        url = f"/c/confirm/{confirmation_token_make(confirmation)}/"

        def click(url=url):
            response = Client(raise_request_exception=False).post(url, HTTP_USER_AGENT="Phone")
            return response.status_code, "Your subscription is confirmed" in response.content.decode()

        outcomes = race(click, click)
        assert all(o.ok for o in outcomes), errors(outcomes)
        assert [o.value for o in outcomes] == [(200, True), (200, True)], i
        customer = Customer.objects.get(email=email)
        assert customer_is_reachable(customer=customer, channel="email")
        assert ConsentEvidence.objects.filter(customer=customer, action="confirm").count() == 1


@pytest.mark.parametrize("known", [True, False], ids=["known-person", "new-person"])
def test_concurrent_captures_of_one_person_keep_every_attribute(transactional_db, known):
    for i in range(REPETITIONS):
        email = f"attrs-{known}-{i}@example.com"
        if known:
            CustomerFactory(email=email, attributes={"shoe_size": "38"})

        def capture(key, email=email, i=i):
            return customer_capture(
                email=email, source=Source.STORE, attributes={key: str(i)}, first_name="Ana"
            ).customer.pk

        outcomes = race(lambda: capture("favourite_colour"), lambda: capture("newsletter_topic"))
        assert all(o.ok for o in outcomes), errors(outcomes)
        assert outcomes[0].value == outcomes[1].value
        attributes = Customer.objects.get(email=email).attributes
        expected = {"favourite_colour": str(i), "newsletter_topic": str(i)} | ({"shoe_size": "38"} if known else {})
        assert attributes == expected, (i, attributes)


def test_one_email_typed_at_two_tills_at_once_gets_one_working_link(tills):
    for i in range(REPETITIONS):
        email = f"two-tills-{i}@example.com"

        outcomes = race(*(lambda till=till, email=email: _checkout_capture(till, email) for till in tills))
        assert all(o.ok for o in outcomes), errors(outcomes)
        assert [o.value for o in outcomes] == [302, 302], i
        customer = Customer.objects.get(email=email)
        # Both grants are on the ledger, one confirmation mail is queued, and its link works.
        assert ConsentEvidence.objects.filter(customer=customer, action="grant").count() == 2
        confirmation = ConsentConfirmation.objects.get(customer=customer)
        assert ConsentState.objects.get(customer=customer, channel="email").status == ConsentStatus.PENDING
        response = Client().post(f"/c/confirm/{confirmation_token_make(confirmation)}/")
        assert response.status_code == 200, i
        assert customer_is_reachable(customer=customer, channel="email")
