"""Purchase CSV import: a dry run with a verdict and reason per row, then the run, through the admin."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.exceptions import ImportFileError
from customers.models import ConsentState, Customer, Purchase, PurchaseImport, Source
from customers.services.purchase_importing import purchase_import_apply, purchase_import_create
from tests.factories import CustomerFactory, MarketingUserFactory, PurchaseFactory
from tests.factories.customers import ProductCategoryFactory

pytestmark = pytest.mark.django_db

HEADER = "external_ref,amount,currency,occurred_at,channel,store,categories,email\n"


def csv(*rows: str) -> bytes:
    return (HEADER + "".join(row + "\n" for row in rows)).encode()


def verdicts(purchase_import):
    return [(row["line"], row["outcome"]) for row in purchase_import.rows]


def test_the_dry_run_says_per_row_what_would_happen_and_records_nothing(store):
    ProductCategoryFactory(name="Shoes")
    known = CustomerFactory(email="known@example.com")
    PurchaseFactory(customer=known, source=Purchase.Source.IMPORT, external_ref="OLD-1", amount=Decimal("10.00"))
    PurchaseFactory(customer=known, source=Purchase.Source.IMPORT, external_ref="OLD-2", amount=Decimal("10.00"))
    data = csv(
        "A-1,20.00,USD,2026-03-02T10:00:00Z,online,,Shoes;shoes,known@example.com",
        f"A-2,30.00,usd,2026-03-02T10:00:00+01:00,store,{store.code},,new@example.com",
        "A-1,20.00,USD,2026-03-02T10:00:00Z,online,,,known@example.com",
        "A-1,99.00,USD,2026-03-02T10:00:00Z,online,,,known@example.com",
        "OLD-1,10.00,USD,2026-03-02T10:00:00Z,online,,,known@example.com",
        "OLD-2,11.00,USD,2026-03-02T10:00:00Z,online,,,known@example.com",
        "A-3,1e3,USD,yesterday,online,,Unknown,not-an-email",
        "A-4,5.00,USD,2026-03-02T10:00:00Z,store,,,known@example.com",
        '"A-5,5.00',
    )
    before = Purchase.objects.count()

    purchase_import = purchase_import_create(file_name="orders.csv", data=data)

    assert verdicts(purchase_import) == [
        (2, "create"),
        (3, "create"),
        (4, "skip"),
        (5, "refuse"),
        (6, "skip"),
        (7, "refuse"),
        (8, "refuse"),
        (9, "refuse"),
        (10, "refuse"),
    ]
    reasons = {row["line"]: row["reason"] for row in purchase_import.rows}
    assert reasons[3] == "New customer profile (without consent)."
    assert "line 2" in reasons[5].lower()
    for field in ("amount", "occurred_at", "categories", "customer.email"):
        assert f"{field}:" in reasons[8]
    assert "store" in reasons[9]
    assert (purchase_import.created_count, purchase_import.skipped_count, purchase_import.refused_count) == (2, 2, 5)
    assert Purchase.objects.count() == before
    assert Customer.objects.count() == 1


def test_applying_records_the_good_rows_once_and_new_buyers_get_no_consent(store):
    data = csv(
        "A-1,20.00,USD,2026-03-02T10:00:00Z,online,,,ada@example.com",
        f"A-2,30.00,USD,2026-03-02T10:00:00Z,store,{store.code},,ada@example.com",
        "A-3,oops,USD,2026-03-02T10:00:00Z,online,,,ada@example.com",
    )
    purchase_import = purchase_import_create(file_name="orders.csv", data=data)

    assert purchase_import_apply(purchase_import=purchase_import) is True
    assert purchase_import_apply(purchase_import=purchase_import) is False

    purchase_import.refresh_from_db()
    assert purchase_import.status == PurchaseImport.Status.DONE
    assert purchase_import.content == ""
    assert verdicts(purchase_import) == [(2, "create"), (3, "create"), (4, "refuse")]
    assert set(Purchase.objects.values_list("external_ref", "source", "channel")) == {
        ("A-1", "import", "online"),
        ("A-2", "import", "store"),
    }
    customer = Customer.objects.get()
    assert customer.source == Source.IMPORT
    assert not ConsentState.objects.filter(customer=customer).exists()

    again = purchase_import_create(file_name="orders.csv", data=data)
    purchase_import_apply(purchase_import=again)
    again.refresh_from_db()
    assert verdicts(again) == [(2, "skip"), (3, "skip"), (4, "refuse")]
    assert Purchase.objects.count() == 2


def test_an_exported_formula_guard_is_undone_and_a_bad_header_refuses_the_file():
    purchase_import = purchase_import_create(
        file_name="orders.csv", data=csv("'=A-1,20.00,USD,2026-03-02T10:00:00Z,online,,,ada@example.com")
    )
    assert purchase_import.rows[0]["external_ref"] == "=A-1"

    with pytest.raises(ImportFileError, match="Unknown column"):
        purchase_import_create(file_name="x.csv", data=b"order,amount\nA,1\n")
    with pytest.raises(ImportFileError, match="lacks"):
        purchase_import_create(file_name="x.csv", data=b"external_ref,email\nA,a@example.com\n")
    assert PurchaseImport.objects.count() == 1


def test_the_admin_uploads_shows_the_check_and_applies_it(client):
    client.force_login(MarketingUserFactory())
    upload = SimpleUploadedFile(
        "orders.csv",
        csv(
            "A-1,20.00,USD,2026-03-02T10:00:00Z,online,,,<b>x</b>@example.com",
            "B-<i>2</i>,1,USD,x,online,,,b@example.com",
        ),
    )

    response = client.post(reverse("admin:customers_purchaseimport_add"), {"file": upload})

    purchase_import = PurchaseImport.objects.get()
    assert response.status_code == 302
    page = client.get(reverse("admin:customers_purchaseimport_change", args=[purchase_import.pk])).content.decode()
    assert "B-&lt;i&gt;2&lt;/i&gt;" in page
    assert "<i>2</i>" not in page
    assert "Record 0 order(s)" not in page
    assert not Purchase.objects.exists()


def test_the_admin_applies_a_checked_file(client):
    client.force_login(MarketingUserFactory())
    upload = SimpleUploadedFile("orders.csv", csv("A-1,20.00,USD,2026-03-02T10:00:00Z,online,,,ada@example.com"))
    client.post(reverse("admin:customers_purchaseimport_add"), {"file": upload})
    purchase_import = PurchaseImport.objects.get()
    page = client.get(reverse("admin:customers_purchaseimport_change", args=[purchase_import.pk])).content.decode()
    assert "Record 1 order(s)" in page

    response = client.post(reverse("admin:customers_purchaseimport_apply", args=[purchase_import.pk]))

    assert response.status_code == 302
    assert Purchase.objects.get().external_ref == "A-1"


def test_a_file_of_too_many_orders_is_refused_whole(monkeypatch):
    from customers.services import purchase_importing

    monkeypatch.setattr(purchase_importing, "MAX_ROWS", 3)
    rows = [f"A-{n},20.00,USD,2026-03-02T10:00:00Z,online,,,a{n}@example.com" for n in range(4)]

    with pytest.raises(ImportFileError, match="more than 3"):
        purchase_import_create(file_name="orders.csv", data=csv(*rows))
    assert not PurchaseImport.objects.exists()


def test_the_dry_run_costs_a_bounded_number_of_queries_per_row(store, django_assert_max_num_queries):
    ProductCategoryFactory(name="Shoes")
    rows = [f"A-{n},20.00,USD,2026-03-02T10:00:00Z,store,{store.code},Shoes,a{n}@example.com" for n in range(20)]

    with django_assert_max_num_queries(2 + 4 * len(rows)):
        purchase_import = purchase_import_create(file_name="orders.csv", data=csv(*rows))

    assert purchase_import.created_count == 20


def test_a_file_above_the_size_cap_is_refused_by_the_service_and_by_the_admin_before_reading_it(client, monkeypatch):
    from customers.services import purchase_importing

    monkeypatch.setattr(purchase_importing, "MAX_FILE_BYTES", 100)
    data = csv(*[f"A-{n},20.00,USD,2026-03-02T10:00:00Z,online,,,a{n}@example.com" for n in range(3)])
    assert len(data) > 100

    with pytest.raises(ImportFileError, match="larger than 0 KB"):
        purchase_import_create(file_name="orders.csv", data=data)
    client.force_login(MarketingUserFactory())
    response = client.post(
        reverse("admin:customers_purchaseimport_add"), {"file": SimpleUploadedFile("orders.csv", data)}
    )

    assert response.status_code == 200
    assert "larger than 0 KB" in response.content.decode()
    assert not PurchaseImport.objects.exists()
