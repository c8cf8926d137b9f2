"""CSV import: dry run report, per-row errors, savepoints, idempotent re-import, admin flow and command."""

from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from customers.exceptions import ImportFileError
from customers.models import (
    Channel,
    ConsentEvidence,
    ConsentMethod,
    ConsentStatus,
    Customer,
    CustomerImport,
    Source,
)
from customers.services.consent import Evidence, consent_grant, consent_withdraw, suppression_add
from customers.services.importing import (
    MAX_ROW_CHARS,
    customer_import_create,
    customer_import_queue,
    customer_import_run,
)
from tests.factories import CustomerFactory, MarketingUserFactory, StoreFactory

pytestmark = pytest.mark.django_db

GOOD = (
    "email,phone,first_name,last_name,locale,birthday,home_store,email_consent,sms_consent,attr:shoe_size\n"
    "ann@example.com,(415) 555-2671,Ann,Lee,en,1990-05-17,nyc-5th,yes,yes,38\n"
    "bob@example.com,,Bob,Stone,fr,,,no,,\n"
    "cara@example.com,,Cara,,,,,,,41\n"
)


def run(content: str, basis: str = "Paper forms, spring fair", user=None) -> CustomerImport:
    customer_import = customer_import_create(
        file_name="list.csv", data=content.encode(), consent_basis=basis, user=user
    )
    assert customer_import_queue(customer_import=customer_import, enqueue=False)
    return customer_import_run(import_id=customer_import.pk)


def test_dry_run_counts_and_writes_nothing(store):
    CustomerFactory(email="bob@example.com")
    customer_import = customer_import_create(file_name="list.csv", data=GOOD.encode(), consent_basis="Forms")
    assert customer_import.status == CustomerImport.Status.VALIDATED
    assert (customer_import.total_rows, customer_import.created_count, customer_import.updated_count) == (3, 2, 1)
    assert customer_import.error_count == 0
    assert Customer.objects.count() == 1
    assert not ConsentEvidence.objects.exists()


def test_import_creates_profiles_with_consent_and_attributes(store):
    customer_import = run(GOOD)
    assert customer_import.status == CustomerImport.Status.DONE
    assert (customer_import.processed_rows, customer_import.created_count, customer_import.error_count) == (3, 3, 0)
    ann = Customer.objects.get(email="ann@example.com")
    assert ann.phone == "+14155552671"
    assert ann.source == Source.IMPORT
    assert ann.home_store == store
    assert ann.birthday.isoformat() == "1990-05-17"
    assert ann.attributes == {"shoe_size": "38"}
    assert ann.time_zone == "America/New_York"
    for channel in (Channel.EMAIL, Channel.SMS):
        entry = ConsentEvidence.objects.get(customer=ann, channel=channel)
        assert entry.method == ConsentMethod.IMPORT
        assert entry.basis == "Paper forms, spring fair"
        assert entry.source_reference == f"import:{customer_import.pk} line 2"
        assert ann.consent_states.get(channel=channel).status == ConsentStatus.GRANTED
    bob = Customer.objects.get(email="bob@example.com")
    assert bob.consent_states.get(channel=Channel.EMAIL).status == ConsentStatus.WITHDRAWN
    assert bob.locale == "fr"
    cara = Customer.objects.get(email="cara@example.com")
    assert not cara.consent_states.exists()


def test_reimport_is_idempotent(store):
    run(GOOD)
    profiles, ledger = Customer.objects.count(), ConsentEvidence.objects.count()
    second = run(GOOD)
    assert (second.created_count, second.updated_count, second.error_count) == (0, 3, 0)
    assert Customer.objects.count() == profiles
    assert ConsentEvidence.objects.count() == ledger


def test_import_updates_existing_profile_found_by_phone(store):
    existing = CustomerFactory(email=None, phone="+14155552671", first_name="")
    customer_import = run("phone,first_name\n+1 415-555-2671,Ann\n")
    assert customer_import.updated_count == 1
    existing.refresh_from_db()
    assert existing.first_name == "Ann"
    assert Customer.objects.count() == 1


BAD = (
    "email,phone,first_name,birthday,home_store,email_consent,sms_consent\n"
    "good@example.com,,Good,,,yes,\n"  # 2
    "not-an-email,,Bad,,,,\n"  # 3
    ",,Nobody,,,,\n"  # 4
    "date@example.com,,D,17/05/1990,,,\n"  # 5
    "store@example.com,,S,,nowhere,,\n"  # 6
    "consent@example.com,,C,,,maybe,\n"  # 7
    "sms@example.com,,M,,,,yes\n"  # 8
    "blocked@example.com,,B,,,yes,\n"  # 9
    "phone@example.com,12,P,,,,\n"  # 10
    "short@example.com,,S\n"  # 11
    '"multi@example.com",,"Line\nbreak",,,,\n'  # 12-13
    "after@example.com,,After,,,yes,\n"  # 14
)


def test_bad_rows_are_reported_by_line_and_good_rows_import(store):
    suppression_add(channel=Channel.EMAIL, address="blocked@example.com", reason="hard_bounce")
    checked = customer_import_create(file_name="bad.csv", data=BAD.encode(), consent_basis="Forms")
    errors = {e["line"]: e["error"] for e in checked.errors}
    assert set(errors) == {3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
    assert errors[3].startswith("email:")
    assert "neither an email nor a phone" in errors[4]
    assert "YYYY-MM-DD" in errors[5]
    assert "nowhere" in errors[6]
    assert "yes, no or leave it blank" in errors[7]
    assert "no phone" in errors[8]
    assert "suppression list" in errors[9]
    assert errors[10].startswith("phone:")
    assert "Expected 7 columns, found 3" in errors[11]
    assert "Lines 12-13" in errors[12]
    assert "line break" in errors[12]
    assert (checked.created_count, checked.error_count) == (2, 10)
    assert customer_import_queue(customer_import=checked, enqueue=False)
    done = customer_import_run(import_id=checked.pk)
    assert {e["line"] for e in done.errors} == set(errors)
    assert set(Customer.objects.values_list("email", flat=True)) == {
        "good@example.com",
        "after@example.com",
    }
    assert ConsentEvidence.objects.get(customer__email="after@example.com").source_reference.endswith("line 14")


def test_a_row_failing_after_its_profile_was_written_leaves_no_trace(store, clerk):
    """The withdrawn check runs after capture; its savepoint must roll the profile update back."""
    customer = CustomerFactory(email="left@example.com", first_name="Original")
    consent_grant(
        customer=customer,
        channel=Channel.EMAIL,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=clerk, basis="Form"),
    )
    consent_withdraw(customer=customer, channel=Channel.EMAIL, evidence=Evidence(method=ConsentMethod.ONE_CLICK))
    ledger = ConsentEvidence.objects.count()
    customer_import = customer_import_create(
        file_name="x.csv", data=b"email,first_name,email_consent\nleft@example.com,Changed,yes\n", consent_basis="F"
    )
    assert "withdrew" in customer_import.errors[0]["error"]
    # Even if the state changed between check and run, the run refuses the row and writes nothing of it.
    customer_import_queue(customer_import=customer_import, enqueue=False)
    done = customer_import_run(import_id=customer_import.pk)
    assert done.error_count == 1
    customer.refresh_from_db()
    assert customer.first_name == "Original"
    assert ConsentEvidence.objects.count() == ledger


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"email\n", "no rows"),
        (b"name,mail\nann,ann@example.com\n", "Unknown column 'name'"),
        (b"first_name\nAnn\n", "needs an email or a phone column"),
        (b"email,email\na@example.com,b@example.com\n", "twice"),
        (b"email\nann@example.com\x00\n", "NUL"),
        ("email,first_name\nann@example.com,Jos\u00e9\n".encode("latin-1"), "not UTF-8"),
        (b"email,attr:bad name\na@example.com,1\n", "attribute names"),
    ],
)
def test_unreadable_files_get_a_clear_error_and_store_nothing(data, message):
    with pytest.raises(ImportFileError, match=message):
        customer_import_create(file_name="x.csv", data=data)
    assert not CustomerImport.objects.exists()


def test_non_utf8_error_names_the_line():
    data = "email,first_name\nann@example.com,Ann\nbob@example.com,Jos\u00e9\n".encode("latin-1")
    with pytest.raises(ImportFileError, match="Line 3"):
        customer_import_create(file_name="x.csv", data=data)


def test_utf8_with_bom_and_crlf_is_accepted():
    data = "\ufeffEmail,First_Name\r\nann@example.com,Jos\u00e9\r\n".encode()
    customer_import = customer_import_create(file_name="x.csv", data=data)
    assert (customer_import.total_rows, customer_import.error_count) == (1, 0)


def test_oversize_row_is_a_row_error():
    data = f"email,first_name\nbig@example.com,{'x' * MAX_ROW_CHARS}\nok@example.com,Ok\n".encode()
    customer_import = customer_import_create(file_name="x.csv", data=data)
    assert customer_import.errors == [{"line": 2, "error": f"The row is longer than {MAX_ROW_CHARS} characters."}]
    assert customer_import.created_count == 1


def test_consent_without_a_basis_is_refused():
    with pytest.raises(ImportFileError, match="state the basis"):
        customer_import_create(file_name="x.csv", data=b"email,email_consent\na@example.com,yes\n", consent_basis=" ")
    # Without a "yes" no basis is needed.
    assert customer_import_create(file_name="x.csv", data=b"email,email_consent\na@example.com,no\n")


def test_queue_is_compare_and_set_and_enqueues_on_commit(django_capture_on_commit_callbacks, monkeypatch):
    from customers import tasks

    sent = []
    monkeypatch.setattr(tasks.customer_import_run_task, "delay", lambda import_id: sent.append(import_id))
    customer_import = customer_import_create(file_name="x.csv", data=b"email\na@example.com\n")
    with django_capture_on_commit_callbacks(execute=True):
        assert customer_import_queue(customer_import=customer_import)
        assert not customer_import_queue(customer_import=customer_import)
    assert sent == [customer_import.pk]
    customer_import.refresh_from_db()
    assert customer_import.status == CustomerImport.Status.QUEUED
    tasks.customer_import_run_task(customer_import.pk)
    customer_import.refresh_from_db()
    assert customer_import.status == CustomerImport.Status.DONE
    assert Customer.objects.filter(email="a@example.com").exists()
    # A duplicate delivery of the task does nothing.
    customer_import_run(import_id=customer_import.pk)
    assert Customer.objects.count() == 1


# --- admin ----------------------------------------------------------------------------------------


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory()
    client.force_login(user)
    return user


def test_admin_upload_report_confirm_progress(client, marketer, store, django_capture_on_commit_callbacks, monkeypatch):
    from customers import tasks

    sent = []
    monkeypatch.setattr(tasks.customer_import_run_task, "delay", lambda import_id: sent.append(import_id))
    upload = SimpleUploadedFile("list.csv", (GOOD + "bad,,X,,,,,,,\n").encode(), content_type="text/csv")
    response = client.post(
        reverse("admin:customers_customerimport_add"), {"file": upload, "consent_basis": "Paper forms"}
    )
    assert response.status_code == 302
    customer_import = CustomerImport.objects.get()
    assert customer_import.created_by == marketer
    report = client.get(response.url)
    content = report.content.decode()
    assert report.status_code == 200
    assert "3</strong> new profile" in content
    assert "Line" in content
    assert "<td>5</td>" in content
    assert "Import 3 row(s)" in content
    assert 'http-equiv="refresh"' not in content
    assert not Customer.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        confirm = client.post(reverse("admin:customers_customerimport_confirm", args=[customer_import.pk]))
    assert confirm.status_code == 302
    assert sent == [customer_import.pk]
    queued = client.get(confirm.url).content.decode()
    assert 'http-equiv="refresh"' in queued  # auto-refresh while queued or running
    assert "0 / 4 rows" in queued

    customer_import_run(import_id=customer_import.pk)
    done = client.get(confirm.url).content.decode()
    assert "4 / 4 rows (100 %)" in done
    assert 'http-equiv="refresh"' not in done
    assert Customer.objects.count() == 3
    # Confirming again does not queue a second run.
    client.post(reverse("admin:customers_customerimport_confirm", args=[customer_import.pk]))
    assert sent == [customer_import.pk]


def test_admin_upload_shows_file_errors(client, marketer):
    upload = SimpleUploadedFile("x.csv", b"\xff\xfe\x00e\x00m", content_type="text/csv")
    response = client.post(reverse("admin:customers_customerimport_add"), {"file": upload})
    assert response.status_code == 200
    assert "NUL" in response.content.decode()
    upload = SimpleUploadedFile("x.csv", b"email,email_consent\na@example.com,yes\n")
    response = client.post(reverse("admin:customers_customerimport_add"), {"file": upload})
    assert "state the basis" in response.content.decode()
    assert not CustomerImport.objects.exists()


def test_admin_report_escapes_cells(client, marketer):
    data = b"email,first_name,home_store\na@example.com,X,<script>alert(1)</script>\n"
    customer_import = customer_import_create(file_name="<b>x</b>.csv", data=data)
    content = client.get(reverse("admin:customers_customerimport_change", args=[customer_import.pk])).content
    assert b"<script>alert(1)</script>" not in content
    assert b"<b>x</b>" not in content


# --- command ---------------------------------------------------------------------------------------


def test_command_dry_run_prints_report_and_writes_nothing(tmp_path, store):
    path = tmp_path / "list.csv"
    path.write_text(GOOD + "bad,,X,,,,,,,\n")
    out = StringIO()
    call_command("import_customers", str(path), "--basis", "Forms", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "Dry run: 4 row(s), 3 created, 0 updated, 1 error(s)." in text
    assert "line 5: email:" in text
    assert not Customer.objects.exists()
    assert not CustomerImport.objects.exists()


def test_command_imports_with_basis_and_progress(tmp_path, store):
    path = tmp_path / "list.csv"
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(60))
    path.write_text("email,first_name\n" + rows)
    out = StringIO()
    call_command("import_customers", str(path), "--basis", "Forms", stdout=out)
    text = out.getvalue()
    assert "… 25/60 rows" in text
    assert "… 50/60 rows" in text
    assert "done: 60 row(s), 60 created" in text
    assert Customer.objects.count() == 60
    assert CustomerImport.objects.get().status == CustomerImport.Status.DONE


def test_command_refuses_consent_without_basis_and_missing_file(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("email,sms_consent,phone\na@example.com,yes,+14155552671\n")
    with pytest.raises(CommandError, match="state the basis"):
        call_command("import_customers", str(path), stdout=StringIO())
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_customers", str(tmp_path / "missing.csv"), stdout=StringIO())
    assert not Customer.objects.exists()


def test_import_unknown_store_and_store_codes_are_case_insensitive():
    StoreFactory(code="sf-union")
    done = run("email,home_store\na@example.com,SF-UNION\n")
    assert done.error_count == 0
    assert Customer.objects.get().home_store.code == "sf-union"


def test_dry_run_query_count_does_not_grow_with_rows(django_assert_max_num_queries):
    CustomerFactory(email="p7@example.com")
    suppression_add(channel=Channel.SMS, address="+14155550009", reason="complaint")
    rows = "".join(f"p{i}@example.com,+1415555{i:04d},yes,yes\n" for i in range(500))
    data = ("email,phone,email_consent,sms_consent\n" + rows).encode()
    with django_assert_max_num_queries(8):
        customer_import = customer_import_create(file_name="big.csv", data=data, consent_basis="Forms")
    assert (customer_import.created_count, customer_import.updated_count) == (498, 1)
    assert customer_import.errors == [
        {"line": 11, "error": "sms_consent: this address is on the suppression list; it cannot be granted."}
    ]


def test_run_is_sliced_by_time_and_resumes_where_it_stopped(django_capture_on_commit_callbacks, monkeypatch):
    from customers import tasks
    from customers.services import importing

    sent = []
    monkeypatch.setattr(tasks.customer_import_run_task, "delay", lambda import_id: sent.append(import_id))
    rows = "".join(f"s{i}@example.com\n" for i in range(60))
    customer_import = customer_import_create(file_name="x.csv", data=("email\n" + rows).encode())
    customer_import_queue(customer_import=customer_import, enqueue=False)
    clock = iter(range(1000))
    monkeypatch.setattr(importing.time, "monotonic", lambda: next(clock))
    # Budget of 30 ticks: the first slice stops part-way, goes back to queued and enqueues the rest.
    with django_capture_on_commit_callbacks(execute=True):
        first = customer_import_run(import_id=customer_import.pk, time_budget=30)
    assert first.status == CustomerImport.Status.QUEUED
    assert 0 < first.processed_rows < 60
    assert first.processed_rows == Customer.objects.count()
    assert sent == [customer_import.pk]
    done = customer_import_run(import_id=customer_import.pk, time_budget=None)
    assert done.status == CustomerImport.Status.DONE
    assert (done.processed_rows, done.created_count, done.error_count) == (60, 60, 0)
    assert Customer.objects.count() == 60


def test_lost_runs_are_redriven_after_their_lease():
    from datetime import timedelta

    from django.utils import timezone

    from customers.services.importing import IMPORT_LEASE, customer_imports_redrive

    fresh = customer_import_create(file_name="a.csv", data=b"email\na@example.com\n")
    customer_import_queue(customer_import=fresh, enqueue=False)
    dead = customer_import_create(file_name="b.csv", data=b"email\nb@example.com\n")
    customer_import_queue(customer_import=dead, enqueue=False)
    long_ago = timezone.now() - IMPORT_LEASE - timedelta(minutes=1)
    CustomerImport.objects.filter(pk=dead.pk).update(status=CustomerImport.Status.RUNNING, heartbeat_at=long_ago)
    assert customer_imports_redrive() == [dead.pk]
    dead.refresh_from_db()
    assert dead.status == CustomerImport.Status.QUEUED
    assert customer_imports_redrive() == []  # not re-sent again within the lease
    later = timezone.now() + IMPORT_LEASE + timedelta(minutes=1)
    assert sorted(customer_imports_redrive(now=later)) == sorted([fresh.pk, dead.pk])
    customer_import_run(import_id=dead.pk)
    assert Customer.objects.filter(email="b@example.com").exists()


def test_sweep_task_enqueues_redriven_imports(monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from customers import tasks

    sent = []
    monkeypatch.setattr(tasks.customer_import_run_task, "delay", lambda import_id: sent.append(import_id))
    customer_import = customer_import_create(file_name="a.csv", data=b"email\na@example.com\n")
    customer_import_queue(customer_import=customer_import, enqueue=False)
    CustomerImport.objects.update(heartbeat_at=timezone.now() - timedelta(hours=1))
    tasks.customer_imports_sweep_task()
    assert sent == [customer_import.pk]


def test_content_is_not_kept_after_the_import():
    customer_import = run("email\nann@example.com\n")
    assert customer_import.content == ""
    assert customer_import.content_sha256


def test_too_many_rows_and_data_instead_of_header(monkeypatch):
    from customers.services import importing

    monkeypatch.setattr(importing, "MAX_ROWS", 2)
    with pytest.raises(ImportFileError, match="more than 2 rows"):
        customer_import_create(file_name="x.csv", data=b"email\na@example.com\nb@example.com\nc@example.com\n")
    with pytest.raises(ImportFileError, match="Line 1 must be the header"):
        customer_import_create(file_name="x.csv", data=b"ann@example.com,Ann\nbob@example.com,Bob\n")


def test_unconfirmed_files_are_forgotten_after_a_week():
    from datetime import timedelta

    from django.utils import timezone

    from customers.services.importing import customer_imports_forget_unconfirmed

    old = customer_import_create(file_name="old.csv", data=b"email\nann@example.com\n")
    recent = customer_import_create(file_name="new.csv", data=b"email\nbob@example.com\n")
    CustomerImport.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert customer_imports_forget_unconfirmed() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, old.content) == (CustomerImport.Status.FAILED, "")
    assert "bob@example.com" in recent.content
    assert not customer_import_queue(customer_import=old, enqueue=False)


# --- bad input that used to get through ----------------------------------------------------------


def test_trailing_dots_unusable_phones_and_hidden_characters_are_row_errors(store):
    ann = CustomerFactory(email="ann@example.com", first_name="Ann")
    data = (
        "email,phone,first_name,last_name,sms_consent\n"
        "ann@example.com.,,Mallory,,\n"  # 2
        "vanity@example.com,1-800-FLOWERS,V,,\n"  # 3
        "ext@example.com,(415) 555-2671 ext 12,E,,\n"  # 4
        "premium@example.com,+1 900 555 0123,P,,\n"  # 5
        "bidi@example.com,,\u202eAnn,,\n"  # 6
        "tab@example.com,,Ann,Le\te,\n"  # 7
        "zero@example.com,,Ann\u200bx,,\n"  # 8
        "land@example.com,+44 20 7946 0018,L,,yes\n"  # 9
        "good@example.com,+44 7911 123456,G,,yes\n"  # 10
        "landline-no-sms@example.com,+44 20 7946 0019,N,,\n"  # 11
    )
    checked = customer_import_create(file_name="x.csv", data=data.encode(), consent_basis="Forms")
    errors = {e["line"]: e["error"] for e in checked.errors}
    assert set(errors) == {2, 3, 4, 5, 6, 7, 8, 9}
    assert errors[2] == "email: The email address ends with a dot; remove it (name@example.com)."
    assert errors[3].startswith("phone:")
    assert "letters" in errors[3]
    assert "extension" in errors[4]
    assert "premium-rate" in errors[5]
    assert errors[6].startswith("first_name:")
    assert "invisible character" in errors[6]
    assert errors[7].startswith("last_name:")
    assert errors[8].startswith("first_name:")
    assert errors[9].startswith("sms_consent: SMS consent needs a mobile number; this is a landline")
    assert checked.created_count == 2
    customer_import_queue(customer_import=checked, enqueue=False)
    done = customer_import_run(import_id=checked.pk)
    assert {e["line"] for e in done.errors} == set(errors)
    assert set(Customer.objects.values_list("email", flat=True)) == {
        "ann@example.com",
        "good@example.com",
        "landline-no-sms@example.com",
    }
    ann.refresh_from_db()
    assert ann.first_name == "Ann"
    good = Customer.objects.get(email="good@example.com")
    assert good.consent_states.get(channel=Channel.SMS).status == ConsentStatus.GRANTED


def test_an_unterminated_quote_is_a_row_error_and_the_rows_after_it_still_import(store):
    data = (
        "email,first_name\n"
        "ann@example.com,Ann\n"  # 2
        'open@example.com,"Swallows\n'  # 3
        "bob@example.com,Bob\n"  # 4
        "cat@example.com,Cat\n"  # 5
    )
    checked = customer_import_create(file_name="x.csv", data=data.encode())
    assert [e["line"] for e in checked.errors] == [3]
    assert "never closed" in checked.errors[0]["error"]
    assert (checked.total_rows, checked.created_count) == (4, 3)
    customer_import_queue(customer_import=checked, enqueue=False)
    done = customer_import_run(import_id=checked.pk)
    assert [e["line"] for e in done.errors] == [3]
    assert dict(Customer.objects.values_list("email", "first_name")) == {
        "ann@example.com": "Ann",
        "bob@example.com": "Bob",
        "cat@example.com": "Cat",
    }


def test_a_quote_open_across_more_than_a_row_may_hold_stops_there():
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(300))  # well over MAX_ROW_CHARS in all
    data = 'email,first_name\nopen@example.com,"Open\n' + rows + 'last@example.com,"Last"\n'
    checked = customer_import_create(file_name="x.csv", data=data.encode())
    assert [e["line"] for e in checked.errors] == [2]
    assert "never closed" in checked.errors[0]["error"]
    assert checked.created_count == 301


def test_a_cell_with_a_line_break_makes_its_whole_record_one_row_error(store):
    data = (
        "email,first_name,last_name\n"
        '"ann@example.com","Ann\nbob@example.com",Lee\n'  # 2-3: one record, never half of it
        'cat@example.com,"Cat\r\nCole",X\n'  # 4-5
        "dan@example.com,Dan,Day\n"  # 6
        'eve@example.com,"Eve"x,Stray\n'  # 7: a quote in the wrong place
        "fay@example.com,Fay,Fox\n"  # 8
    )
    checked = customer_import_create(file_name="x.csv", data=data.encode())
    errors = {e["line"]: e["error"] for e in checked.errors}
    assert set(errors) == {2, 4, 7}
    assert errors[2].startswith("Lines 2-3 are one record: a cell contains a line break.")
    assert errors[4].startswith("Lines 4-5 are one record")
    assert "check the quotes" in errors[7]
    customer_import_queue(customer_import=checked, enqueue=False)
    done = customer_import_run(import_id=checked.pk)
    assert {e["line"] for e in done.errors} == {2, 4, 7}
    assert set(Customer.objects.values_list("email", flat=True)) == {"dan@example.com", "fay@example.com"}


def test_a_header_spanning_lines_is_a_file_error():
    with pytest.raises(ImportFileError, match="Line 1 must be the header"):
        customer_import_create(file_name="x.csv", data=b'email,"first\nname"\na@example.com,A\n')


def test_phones_are_read_in_the_stated_region_else_the_home_stores_country(store):
    StoreFactory(code="ldn", country="GB", time_zone="Europe/London")
    data = "email,phone,home_store\nuk@example.com,07911 123456,ldn\nus@example.com,(415) 555-2671,\n"
    done = run(data)
    assert done.error_count == 0
    assert dict(Customer.objects.values_list("email", "phone")) == {
        "uk@example.com": "+447911123456",
        "us@example.com": "+14155552671",
    }
    checked = customer_import_create(
        file_name="fr.csv", data=b"email,phone\nfr@example.com,06 12 34 56 78\n", phone_region="fr"
    )
    assert (checked.phone_region, checked.error_count) == ("FR", 0)
    customer_import_queue(customer_import=checked, enqueue=False)
    customer_import_run(import_id=checked.pk)
    assert Customer.objects.get(email="fr@example.com").phone == "+33612345678"
    with pytest.raises(ImportFileError, match="not a country code"):
        customer_import_create(file_name="x.csv", data=b"email\na@example.com\n", phone_region="XX")


def test_admin_upload_takes_the_phone_country(client, marketer):
    upload = SimpleUploadedFile("gb.csv", b"email,phone\nuk@example.com,07911 123456\n", content_type="text/csv")
    response = client.post(reverse("admin:customers_customerimport_add"), {"file": upload, "phone_region": "GB"})
    assert response.status_code == 302
    customer_import = CustomerImport.objects.get()
    assert (customer_import.phone_region, customer_import.error_count) == ("GB", 0)
    upload = SimpleUploadedFile("gb.csv", b"email,phone\nuk@example.com,07911 123456\n", content_type="text/csv")
    response = client.post(reverse("admin:customers_customerimport_add"), {"file": upload, "phone_region": "QQ"})
    assert response.status_code == 200
    assert "not a country code" in response.content.decode()


def test_command_takes_the_phone_region(tmp_path):
    path = tmp_path / "gb.csv"
    path.write_text("email,phone\nuk@example.com,07911 123456\n")
    call_command("import_customers", str(path), "--phone-region", "GB", stdout=StringIO())
    assert Customer.objects.get().phone == "+447911123456"
