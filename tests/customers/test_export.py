"""CSV export: formula injection neutralised, import-compatible columns, command."""

import csv
from io import StringIO

import pytest
from django.core.management import call_command

from customers.models import Channel, ConsentMethod
from customers.services.consent import Evidence, consent_grant, consent_withdraw
from customers.services.exporting import csv_safe, customers_export_csv
from customers.services.importing import customer_import_create
from customers.services.profiles import customer_erase
from tests.factories import CustomerFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


def _export(queryset=None):
    stream = StringIO()
    customers_export_csv(queryset=queryset, stream=stream)
    return list(csv.reader(StringIO(stream.getvalue())))


def test_export_neutralises_formulas_in_every_cell():
    CustomerFactory(
        first_name='=HYPERLINK("http://evil.example","click")',
        last_name="@SUM(1+1)",
        email="ann@example.com",
        phone="+14155552671",
        attributes={"note": "-2+3", "tier": "=cmd|' /C calc'!A0"},
    )
    header, row = _export()
    record = dict(zip(header, row, strict=True))
    assert record["first_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert record["last_name"] == "'@SUM(1+1)"
    assert record["phone"] == "'+14155552671"
    assert record["attr:note"] == "'-2+3"
    assert record["attr:tier"].startswith("'=")
    for cell in row:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_export_columns_consent_and_skips_erased():
    store = StoreFactory(code="nyc-5th")
    user = UserFactory()
    ann = CustomerFactory(email="ann@example.com", home_store=store, first_name="Ann")
    bob = CustomerFactory(email="bob@example.com")
    gone = CustomerFactory(email="gone@example.com")
    consent_grant(
        customer=ann, channel=Channel.EMAIL, evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=user, basis="F")
    )
    consent_withdraw(customer=bob, channel=Channel.EMAIL, evidence=Evidence(method=ConsentMethod.ONE_CLICK))
    customer_erase(customer=gone, user=user)
    header, *rows = _export()
    records = {r["email"]: r for r in (dict(zip(header, row, strict=True)) for row in rows)}
    assert set(records) == {"ann@example.com", "bob@example.com"}
    assert records["ann@example.com"]["email_consent"] == "yes"
    assert records["ann@example.com"]["home_store"] == "nyc-5th"
    assert records["bob@example.com"]["email_consent"] == "no"
    assert records["ann@example.com"]["sms_consent"] == ""


def test_export_can_be_checked_by_the_import():
    StoreFactory(code="nyc-5th")
    CustomerFactory(email="ann@example.com", phone="+14155552671", attributes={"size": "-38"}, locale="en")
    stream = StringIO()
    customers_export_csv(stream=stream)
    # Export-only columns are dropped, the rest re-imports as an update of the same profile.
    rows = list(csv.reader(StringIO(stream.getvalue())))
    keep = [i for i, name in enumerate(rows[0]) if name not in {"source", "created_at", "id"}]
    out = StringIO()
    csv.writer(out).writerows([[row[i] for i in keep] for row in rows])
    customer_import = customer_import_create(file_name="roundtrip.csv", data=out.getvalue().encode())
    assert (customer_import.updated_count, customer_import.created_count, customer_import.error_count) == (1, 0, 0)
    from customers.services.importing import customer_import_queue, customer_import_run

    customer_import_queue(customer_import=customer_import, enqueue=False)
    customer_import_run(import_id=customer_import.pk)
    from customers.models import Customer

    customer = Customer.objects.get()
    assert (customer.phone, customer.attributes) == ("+14155552671", {"size": "-38"})


def test_export_query_count_is_bounded(django_assert_max_num_queries):
    stores = StoreFactory.create_batch(3)
    for index in range(40):
        CustomerFactory(home_store=stores[index % 3])
    with django_assert_max_num_queries(3):
        rows = _export()
    assert len(rows) == 41


def test_export_command_to_file_and_by_store(tmp_path):
    north = StoreFactory(code="north")
    CustomerFactory(email="n@example.com", home_store=north, first_name="=1+1")
    CustomerFactory(email="s@example.com")
    path = tmp_path / "out.csv"
    call_command("export_customers", "--output", str(path), "--store", "NORTH", stderr=StringIO())
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert len(rows) == 2
    assert rows[1][0] == "n@example.com"
    assert "'=1+1" in rows[1]
    out = StringIO()
    call_command("export_customers", stdout=out, stderr=StringIO())
    assert len(list(csv.reader(StringIO(out.getvalue())))) == 3
