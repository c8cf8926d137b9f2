"""CSV export of profiles, in the import's column layout, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.db.models import OuterRef, QuerySet, Subquery

from customers.models import Channel, ConsentState, ConsentStatus, Customer

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

EXPORT_COLUMNS = [
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "birthday",
    "home_store",
    "email_consent",
    "sms_consent",
    "source",
    "created_at",
    "id",
]
_CONSENT_CELL = {ConsentStatus.GRANTED: "yes", ConsentStatus.WITHDRAWN: "no"}


def csv_safe(value: object) -> str:
    """The text of a cell, with a leading quote when a spreadsheet would run it as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def _with_consent(queryset: QuerySet) -> QuerySet:
    annotations = {
        f"consent_{channel}": Subquery(
            ConsentState.objects.filter(customer=OuterRef("pk"), channel=channel).values("status")[:1]
        )
        for channel in (Channel.EMAIL, Channel.SMS)
    }
    return queryset.annotate(**annotations)


def customers_export_rows(queryset: QuerySet) -> Iterator[list[str]]:
    """Header, then one row per active profile of ``queryset``; every cell passed through ``csv_safe``.

    Custom attributes become ``attr:<name>`` columns (the union over the exported profiles), so an
    export can be imported again. Merged and erased profiles are left out. Two queries in total.
    """
    queryset = queryset.active()
    attribute_names = sorted(
        {name for attributes in queryset.values_list("attributes", flat=True) if attributes for name in attributes}
    )
    yield [csv_safe(column) for column in EXPORT_COLUMNS] + [csv_safe(f"attr:{name}") for name in attribute_names]
    rows = _with_consent(queryset.select_related("home_store").order_by("pk"))
    for customer in rows.iterator(chunk_size=2000):
        cells = [
            customer.email,
            customer.phone,
            customer.first_name,
            customer.last_name,
            customer.locale,
            customer.birthday.isoformat() if customer.birthday else "",
            customer.home_store.code if customer.home_store else "",
            _CONSENT_CELL.get(customer.consent_email, ""),
            _CONSENT_CELL.get(customer.consent_sms, ""),
            customer.source,
            customer.created_at.isoformat(),
            customer.public_id,
        ]
        attributes = customer.attributes or {}
        cells.extend(attributes.get(name, "") for name in attribute_names)
        yield [csv_safe(cell) for cell in cells]


def customers_export_csv(*, queryset: QuerySet | None = None, stream) -> int:
    """Write the export of ``queryset`` (default: every active profile) to a text stream; returns rows."""
    if queryset is None:
        queryset = Customer.objects.all()
    writer = csv.writer(stream)
    count = -1
    for count, row in enumerate(customers_export_rows(queryset)):  # noqa: B007
        writer.writerow(row)
    return max(count, 0)


class _Echo:
    def write(self, value: str) -> str:
        return value


def customers_export_lines(queryset: QuerySet) -> Iterable[str]:
    """The export as CSV lines, for a streaming HTTP response."""
    writer = csv.writer(_Echo())
    return (writer.writerow(row) for row in customers_export_rows(queryset))
