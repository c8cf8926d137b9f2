"""CSV import of past orders: a dry run that says per row what would be created, skipped or refused
and why, then a run that records each good row through ``order_record`` in its own transaction.

Rows are checked by the same rules as orders sent through the API (``order_clean``) and recorded under
the source ``import``: importing the same file twice records nothing new.
"""

from __future__ import annotations

import dataclasses
import hashlib

from django.utils import timezone

from customers.exceptions import CustomerError, ImportFileError
from customers.models import Purchase, PurchaseImport
from customers.selectors import customer_find_by_contact
from customers.services.exporting import FORMULA_TRIGGERS
from customers.services.importing import _records as csv_records
from customers.services.importing import import_text_decode
from customers.services.orders import order_clean, order_record

# Applied within the admin's request (about 17 ms an order measured on a loaded 2-core machine): a
# file of recent orders, not a migration of years, which would need a task like the customer import's.
MAX_FILE_BYTES = 1024 * 1024
MAX_ROWS = 1000
COLUMNS = (
    "external_ref",
    "amount",
    "discount_amount",
    "currency",
    "occurred_at",
    "channel",
    "store",
    "categories",
    "email",
    "phone",
    "customer_id",
)
REQUIRED_COLUMNS = {"external_ref", "amount", "currency", "occurred_at", "channel"}
CATEGORY_SEPARATOR = ";"


@dataclasses.dataclass
class _Tally:
    rows: list[dict] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=lambda: {"create": 0, "skip": 0, "refuse": 0})

    def add(self, line: int, external_ref: str, outcome: str, reason: str = "") -> None:
        self.counts[outcome] += 1
        self.rows.append({"line": line, "external_ref": external_ref[:100], "outcome": outcome, "reason": reason})


def _header(cells: list[str]) -> list[str]:
    header = [cell.strip().lower() for cell in cells]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"Line 1 must be the header. Unknown column {unknown[0][:60]!r}; the columns are: {', '.join(COLUMNS)}."
        )
    if len(set(header)) != len(header):
        raise ImportFileError("The header names a column twice.")
    missing = sorted(REQUIRED_COLUMNS - set(header))
    if missing:
        raise ImportFileError(f"The header lacks the column(s) {', '.join(missing)}.")
    if not {"email", "phone", "customer_id"} & set(header):
        raise ImportFileError("The header needs an email, phone or customer_id column to know the buyer.")
    return header


def _order_data(header: list[str], cells: list[str]) -> dict:
    """One CSV record as the order the API would receive; blank cells are left out."""
    if len(cells) != len(header):
        raise CustomerError(f"The row has {len(cells)} cells; the header has {len(header)}.")
    values = {}
    for name, raw in zip(header, cells, strict=True):
        value = raw.strip()
        if value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS):
            value = value[1:]  # undo an export's formula guard, so an export imports again
        if value:
            values[name] = value
    data = {name: values[name] for name in COLUMNS[:7] if name in values}
    if "categories" in values:
        data["categories"] = [name for name in values["categories"].split(CATEGORY_SEPARATOR) if name.strip()]
    if "customer_id" in values:
        data["customer"] = {"id": values["customer_id"]}
    else:
        data["customer"] = {name: values[name] for name in ("email", "phone") if name in values}
    return data


def _rows(text: str):
    """(line, order data or None, problem) per record after the header; ``ImportFileError`` for the file."""
    records = csv_records(text)
    first = next(records, None)
    if first is None:
        raise ImportFileError("The file has no header line (it is empty).")
    line, cells, problem = first
    if problem:
        raise ImportFileError(f"Line {line} must be the header: {problem}")
    header = _header(cells)
    count = 0
    for line, cells, problem in records:
        count += 1
        if count > MAX_ROWS:
            raise ImportFileError(f"The file has more than {MAX_ROWS} orders; split it.")
        if problem:
            yield line, None, problem
            continue
        try:
            yield line, _order_data(header, cells), None
        except CustomerError as exc:
            yield line, None, str(exc)


def _errors_text(errors: list[dict]) -> str:
    return "; ".join(
        f"{error['field']}: {error['message']}" if error["field"] else error["message"] for error in errors
    )


def purchase_import_check(*, text: str, now=None) -> _Tally:
    """The dry run: what importing ``text`` would do, row by row. Reads only.

    A row is refused when ``order_clean`` finds anything wrong, or when its order number was imported
    before (or earlier in the file) with another amount; it is skipped when that earlier record has the
    same amount (a repeat); otherwise it would be created, and the reason says when a new profile would
    be made for the buyer.
    """
    now = now or timezone.now()
    tally = _Tally()
    parsed = list(_rows(text))
    refs = [data.get("external_ref", "").strip() for _line, data, _problem in parsed if data]
    recorded = dict(
        Purchase.objects.filter(source=Purchase.Source.IMPORT, external_ref__in=refs).values_list(
            "external_ref", "amount"
        )
    )
    earlier: dict[str, tuple[int, object]] = {}
    for line, order in _clean_orders(parsed, tally, now=now):
        ref = order.external_ref
        if ref in earlier:
            first_line, amount = earlier[ref]
            if amount == order.amount:
                tally.add(line, ref, "skip", f"Repeats line {first_line}.")
            else:
                tally.add(line, ref, "refuse", f"Line {first_line} has this order number with another amount.")
            continue
        earlier[ref] = (line, order.amount)
        if ref in recorded:
            if recorded[ref] == order.amount:
                tally.add(line, ref, "skip", "Already imported.")
            else:
                tally.add(line, ref, "refuse", f"Already imported with the amount {recorded[ref]}.")
            continue
        known = order.customer or customer_find_by_contact(email=order.email, phone=order.phone)
        tally.add(line, ref, "create", "" if known else "New customer profile (without consent).")
    return tally


def purchase_import_size_check(size: int) -> None:
    """``ImportFileError`` for a file above the cap; the admin asks before reading the upload."""
    if size > MAX_FILE_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_FILE_BYTES // 1024} KB; split it.")


def purchase_import_create(*, file_name: str, data: bytes, user=None) -> PurchaseImport:
    """Store an uploaded file with its dry-run verdicts (status ``checked``); no order is recorded yet.

    Raises ``ImportFileError`` (and stores nothing) when the file cannot be read at all.
    """
    purchase_import_size_check(len(data))
    text = import_text_decode(data)
    tally = purchase_import_check(text=text)
    return PurchaseImport.objects.create(
        file_name=(file_name or "orders.csv").replace("\x00", "")[:255],
        content=text,
        content_sha256=hashlib.sha256(data).hexdigest(),
        total_rows=len(tally.rows),
        created_count=tally.counts["create"],
        skipped_count=tally.counts["skip"],
        refused_count=tally.counts["refuse"],
        rows=tally.rows,
        created_by=user,
    )


def _clean_orders(parsed, tally: _Tally, *, now):
    """(line, cleaned order) of each parsed row that reads as an order; the others are refused in ``tally``."""
    for line, data, problem in parsed:
        external_ref = (data or {}).get("external_ref", "")
        if problem:
            tally.add(line, external_ref, "refuse", problem)
            continue
        order, errors = order_clean(data, now=now)
        if errors:
            tally.add(line, external_ref, "refuse", _errors_text(errors))
            continue
        yield line, order


def _apply_rows(text: str) -> _Tally:
    tally = _Tally()
    for line, order in _clean_orders(_rows(text), tally, now=timezone.now()):
        try:
            outcome = order_record(order=order, source=Purchase.Source.IMPORT)
        except CustomerError as exc:  # PurchaseConflict included: a repeat with other details
            tally.add(line, order.external_ref, "refuse", str(exc))
        else:
            if not outcome.created:
                tally.add(line, order.external_ref, "skip", "Already imported.")
            else:
                new_profile = "New customer profile (without consent)." if outcome.customer_created else ""
                tally.add(line, order.external_ref, "create", new_profile)
    return tally


def purchase_import_apply(*, purchase_import: PurchaseImport) -> bool:
    """Record the checked file's good rows, each in its own transaction; returns False when the import
    was already started (compare-and-set on the status: applying twice records nothing twice).

    Rows are checked again as they are recorded (the data may have changed since the dry run); the
    verdicts stored are those of this run. The file's text is cleared once done.
    """
    claimed = PurchaseImport.objects.filter(pk=purchase_import.pk, status=PurchaseImport.Status.CHECKED).update(
        status=PurchaseImport.Status.APPLYING
    )
    if not claimed:
        return False
    try:
        tally = _apply_rows(purchase_import.content)
    except BaseException:
        # The rows recorded so far stay recorded; applying again skips them as repeats.
        PurchaseImport.objects.filter(pk=purchase_import.pk).update(status=PurchaseImport.Status.CHECKED)
        raise
    PurchaseImport.objects.filter(pk=purchase_import.pk).update(
        status=PurchaseImport.Status.DONE,
        content="",
        created_count=tally.counts["create"],
        skipped_count=tally.counts["skip"],
        refused_count=tally.counts["refuse"],
        rows=tally.rows,
        finished_at=timezone.now(),
    )
    purchase_import.refresh_from_db()
    return True
