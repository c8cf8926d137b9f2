"""The import's dry run says what will change, row by row and field by field, and what a consent
column's "no" does for that person; checking changes nothing, in the service, the admin and the command."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from customers.models import (
    Channel,
    ConsentEvidence,
    ConsentMethod,
    ConsentState,
    Customer,
    CustomerImport,
)
from customers.services.consent import Evidence, consent_grant, consent_withdraw
from customers.services.importing import customer_import_check, customer_import_queue, customer_import_run
from tests.factories import CustomerFactory, MarketingUserFactory, UserFactory

pytestmark = pytest.mark.django_db

FILE = (
    "email,phone,first_name,last_name,birthday,home_store,email_consent,sms_consent,attr:tier\n"
    "ben@example.com,,Benjamin,,1990-04-01,,no,,gold\n"  # Ben: renamed, granted email consent withdrawn
    "cleo@example.com,,Cleo,,,,no,,\n"  # already withdrawn: left as is
    "dan@example.com,,,,,,no,,\n"  # never asked: a refusal is recorded
    "new@example.com,+1 415 555 0142,Nina,New,,nyc-5th,yes,no,\n"  # a new profile
    "same@example.com,,Sam,,,,,,\n"  # an update changing nothing
)


@pytest.fixture
def people(store):
    staff = UserFactory()
    ben = CustomerFactory(email="ben@example.com", first_name="Ben", last_name="Okafor", attributes={"tier": "silver"})
    consent_grant(
        customer=ben,
        channel=Channel.EMAIL,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=staff, basis="Paper form"),
    )
    cleo = CustomerFactory(email="cleo@example.com", first_name="Cleo")
    consent_withdraw(customer=cleo, channel=Channel.EMAIL, evidence=Evidence(method=ConsentMethod.ONE_CLICK))
    CustomerFactory(email="dan@example.com", first_name="Dan")
    CustomerFactory(email="same@example.com", first_name="Sam")
    return {"ben": ben}


def _snapshot():
    return (
        sorted(
            Customer.objects.values_list("pk", "email", "phone", "first_name", "last_name", "birthday", "attributes")
        ),
        sorted(ConsentState.objects.values_list("customer_id", "channel", "status", "withdrawn_at")),
        ConsentEvidence.objects.count(),
    )


def _by_line(report):
    return {change["line"]: change for change in report.changes}


def test_dry_run_lists_field_changes_and_consent_effects_and_changes_nothing(people):
    before = _snapshot()

    report = customer_import_check(content=FILE, consent_basis="Spring fair forms")

    assert _snapshot() == before
    changes = _by_line(report)
    ben = changes[2]
    assert ben["action"] == "update"
    assert ["first_name", "Ben", "Benjamin"] in ben["fields"]
    assert ["birthday", "", "1990-04-01"] in ben["fields"]
    assert ["attr:tier", "silver", "gold"] in ben["fields"]
    assert not any(name == "last_name" for name, _old, _new in ben["fields"])  # a blank cell keeps "Okafor"
    (consent,) = ben["consents"]
    assert consent["effect"] == "withdraw"
    assert re.match(r"Withdraws the Email consent granted on \d{4}-\d\d-\d\d via Admin", consent["text"])

    assert changes[3]["consents"][0]["effect"] == "leave"
    assert "already withdrawn" in changes[3]["consents"][0]["text"]
    assert changes[3]["fields"] == []
    assert changes[4]["consents"][0]["effect"] == "refuse"
    assert "records a refusal" in changes[4]["consents"][0]["text"]

    new = changes[5]
    assert new["action"] == "create"
    assert ["first_name", "", "Nina"] in new["fields"]
    assert ["phone", "", "+14155550142"] in new["fields"]
    assert ["home_store", "", "nyc-5th"] in new["fields"]
    assert [(c["column"], c["effect"]) for c in new["consents"]] == [
        ("email_consent", "grant"),
        ("sms_consent", "refuse"),
    ]
    assert changes[6] == {**changes[6], "action": "update", "fields": [], "consents": []}
    assert (report.created, report.updated) == (1, 4)


def test_what_the_dry_run_announced_is_what_the_import_does(people):
    # Given a checked file
    customer_import = CustomerImport.objects.create(
        file_name="people.csv", content=FILE, content_sha256="x", consent_basis="Spring fair forms"
    )
    # When it is imported
    customer_import_queue(customer_import=customer_import, enqueue=False)
    done = customer_import_run(import_id=customer_import.pk, time_budget=None)
    # Then Ben was renamed and lost his email consent, Cleo's withdrawal was left alone
    assert done.status == CustomerImport.Status.DONE
    ben = Customer.objects.get(email="ben@example.com")
    assert (ben.first_name, ben.last_name, ben.attributes["tier"]) == ("Benjamin", "Okafor", "gold")
    assert ConsentState.objects.get(customer=ben, channel="email").status == "withdrawn"
    cleo_evidence = ConsentEvidence.objects.filter(customer__email="cleo@example.com")
    assert cleo_evidence.count() == 1  # only the one-click withdrawal from before
    assert ConsentState.objects.get(customer__email="dan@example.com", channel="email").status == "withdrawn"
    assert done.changes == []  # personal data goes with the file


def test_a_row_repeating_an_earlier_rows_person_says_so(people):
    report = customer_import_check(
        content="email,first_name\nzoe@example.com,Zoe\nzoe@example.com,Zoey\n", consent_basis=""
    )
    first, second = report.changes
    assert first["action"] == "create"
    assert second["action"] == "update"
    assert "earlier row" in second["note"]


def test_admin_report_shows_the_changes_escaped_and_changes_nothing(client, people):
    client.force_login(MarketingUserFactory())
    before = _snapshot()
    hostile = FILE + "eve@example.com,,<script>alert(1)</script>,,,,,,\n"
    response = client.post(
        reverse("admin:customers_customerimport_add"),
        {"file": _upload(hostile), "consent_basis": "Spring fair forms", "phone_region": ""},
        follow=True,
    )

    assert _snapshot() == before
    html = response.content.decode()
    table = html[html.index('id="import-changes"') :]
    assert "What the import will change" in html
    assert "first_name: “Ben” → “Benjamin”" in table
    assert "email_consent = no: Withdraws the Email consent granted on" in table
    assert "email_consent = no: Email consent already withdrawn" in table
    assert "<strong>New profile</strong><br>new@example.com" in table
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in table


def test_command_dry_run_prints_each_change_and_changes_nothing(tmp_path, people):
    path = tmp_path / "people.csv"
    path.write_text(FILE)
    before = _snapshot()
    out = StringIO()

    call_command("import_customers", str(path), "--dry-run", "--basis", "Spring fair forms", stdout=out)

    assert _snapshot() == before
    text = out.getvalue()
    assert "line 2: update ben@example.com" in text
    assert "first_name: 'Ben' -> 'Benjamin'" in text
    assert "email_consent=no: Withdraws the Email consent granted on" in text
    assert "line 3: update cleo@example.com" in text
    assert "email_consent=no: Email consent already withdrawn" in text
    assert "line 5: new profile new@example.com" in text
    assert "Nothing was changed (dry run)." in text


def _upload(text):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("people.csv", text.encode(), content_type="text/csv")
