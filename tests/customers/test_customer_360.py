"""The customer change page answers at a glance (consent, choices, purchases, loyalty, messages),
then shows the timeline, filterable by kind with plain links."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from customers.header_sources import HeaderLine, HeaderPanel, header_source_register, header_source_unregister
from customers.models import Channel, ConsentMethod
from customers.services.consent import Evidence, consent_grant, consent_withdraw
from tests.customers.person_record import person_with_everything
from tests.factories import CustomerFactory, MarketingUserFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.force_login(user)
    return user


def change(customer, query=""):
    return reverse("admin:customers_customer_change", args=[customer.public_id]) + query


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _section(html: str, key: str) -> str:
    match = re.search(rf'<section id="c360-{key}".*?</section>', html, re.S)
    assert match, f"no {key} panel"
    return _text(match.group(0))


def test_header_answers_consent_choices_purchases_loyalty_and_messages(client, marketer, disclosures):
    record = person_with_everything(disclosures=disclosures)
    ben = record["customer"]

    html = client.get(change(ben)).content.decode()

    consent = _section(html, "consent")
    assert re.search(r"Email Pending confirmation \d{4}-\d\d-\d\d · Store checkout · Soho", consent)
    assert re.search(r"SMS Withdrawn \d{4}-\d\d-\d\d · SMS keyword", consent)
    assert re.search(r"Push Granted \d{4}-\d\d-\d\d · Admin", consent)
    choices = _section(html, "preferences")
    assert "Paused until" in choices
    assert "at most 2 a week" in choices
    assert "In-store events" in choices
    purchases = _section(html, "purchases")
    assert "Last online 40.00 USD" in purchases
    assert "Last in store 25.50 USD" in purchases
    assert "Soho" in purchases
    # 40 + 25.50 + 100 (a merged profile's purchase), less the 100 refunded
    assert "Lifetime value 65.50 USD" in purchases
    assert "3 purchases, 1 refunded (deducted)" in purchases
    loyalty = _section(html, "loyalty")
    assert "Tier Silver" in loyalty
    balance = record["account"]
    balance.refresh_from_db()
    assert f"Points {balance.points_balance:,}" in loyalty
    assert balance.card_number in loyalty
    assert "Spring sale" in _section(html, "deliveries")
    assert "Welcome step hello" in _section(html, "journeys")
    # The header comes before the form's fields and the timeline.
    assert html.index('id="customer-360"') < html.index('id="id_email"') < html.index('id="timeline"')


def test_a_journeys_panel_appears_once_an_app_registers_it(client, marketer):
    customer = CustomerFactory()

    def journeys(customer, profile_ids):
        return HeaderPanel(key="journeys", title="Open journeys", lines=[HeaderLine(label="Welcome", value="step 2")])

    header_source_register("journeys", journeys, order=20)
    try:
        html = client.get(change(customer)).content.decode()
    finally:
        header_source_unregister("journeys")
    assert "Open journeys Welcome step 2" in _section(html, "journeys")


def test_header_of_a_customer_with_nothing_yet(client, marketer):
    customer = CustomerFactory()
    html = client.get(change(customer)).content.decode()
    assert "Email Not asked" in _section(html, "consent")
    assert "Last online None" in _section(html, "purchases")
    assert "Not a member." in _section(html, "loyalty")
    assert "No message yet." in _section(html, "deliveries")


def test_header_escapes_what_customers_and_providers_wrote(client, marketer):
    customer = CustomerFactory(first_name="<script>x</script>")

    def hostile(customer, profile_ids):
        return HeaderPanel(key="x", title="<b>t</b>", lines=[HeaderLine(label="<i>l</i>", value="<img src=x>")])

    header_source_register("test.hostile", hostile)
    try:
        html = client.get(change(customer)).content.decode()
    finally:
        header_source_unregister("test.hostile")
    assert "<img src=x>" not in html
    assert "&lt;img src=x&gt;" in html
    assert "<b>t</b>" not in html


def test_change_page_queries_do_not_grow_with_history(client, marketer, disclosures, django_assert_max_num_queries):
    record = person_with_everything(disclosures=disclosures)
    ben = record["customer"]
    with django_assert_max_num_queries(40) as small:  # 33 measured
        client.get(change(ben))
    for index in range(30):
        consent_grant(
            customer=ben,
            channel=Channel.PUSH,
            evidence=Evidence(method=ConsentMethod.ADMIN, basis=f"{index}", collected_by=marketer),
        )
        consent_withdraw(customer=ben, channel=Channel.PUSH, evidence=Evidence(method=ConsentMethod.ADMIN))
        PurchaseFactory(customer=ben, amount=Decimal("1.00"))
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        response = client.get(change(ben))
    print(f"change page: {len(small.captured_queries)} queries, {len(large.captured_queries)} with 90 more entries")
    assert response.context["timeline_total"] >= 90


# --- timeline filter ---------------------------------------------------------------------------------


def test_timeline_filters_by_kind_with_plain_links(client, marketer, disclosures):
    ben = person_with_everything(disclosures=disclosures)["customer"]
    everything = client.get(change(ben))
    kinds = {kind: count for kind, _label, count in everything.context["timeline_kinds"]}
    assert set(kinds) >= {"consent", "purchase", "loyalty", "redemption", "delivery"}
    html = everything.content.decode()
    assert 'href="?kind=purchase#timeline" data-kind="purchase"' in html
    assert re.search(r'aria-current="true">All \(\d+\)', html)

    response = client.get(change(ben, "?kind=purchase"))

    entries = response.context["timeline"]
    assert len(entries) == kinds["purchase"] == 3
    assert {entry.kind for entry in entries} == {"purchase"}
    assert re.search(r'data-kind="purchase" aria-current="true">Purchases \(3\)', response.content.decode())
    assert response.context["timeline_total"] == sum(kinds.values())


def test_timeline_filter_keeps_the_changelist_filters_and_ignores_unknown_kinds(client, marketer, disclosures):
    ben = person_with_everything(disclosures=disclosures)["customer"]
    preserved = "_changelist_filters=consent_email%3Dpending"
    response = client.get(change(ben, f"?{preserved}&kind=consent"))
    html = response.content.decode()
    assert f'href="?{preserved}&amp;kind=delivery#timeline"' in html
    assert {entry.kind for entry in response.context["timeline"]} == {"consent"}

    unknown = client.get(change(ben, "?kind=<script>"))
    assert unknown.status_code == 200
    assert len(unknown.context["timeline"]) == unknown.context["timeline_total"]
    assert "<script>" not in unknown.content.decode().split('id="timeline"')[1]
