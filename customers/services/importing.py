"""CSV import of profiles: a dry-run check, then a run that imports each good row in its own savepoint."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta

from django.db import DataError, IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from customers.exceptions import CustomerError, ImportFileError
from customers.models import (
    Channel,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    Customer,
    CustomerImport,
    Source,
    Store,
    Suppression,
)
from customers.normalization import (
    address_hmac,
    normalize_email,
    normalize_name,
    normalize_phone,
    phone_region,
    phone_sms_refusal,
)
from customers.queue import task_enqueue_on_commit
from customers.selectors import address_is_suppressed
from customers.services.consent import Evidence, consent_grant, consent_withdraw
from customers.services.editing import _LOCALE
from customers.services.exporting import FORMULA_TRIGGERS
from customers.services.profiles import customer_capture

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
MAX_ROW_CHARS = 4096
MAX_ATTRIBUTE_VALUE = 500
MAX_REPORTED_ERRORS = 1000
MAX_REPORTED_CHANGES = 1000
PROGRESS_EVERY = 25
# One slice of a run stays well under the worker's task time limit; the next slice is a new task.
RUN_TIME_BUDGET_SECONDS = 120.0
# A running import whose heartbeat is older than this lost its worker (longer than the time limit).
IMPORT_LEASE = timedelta(minutes=10)
# A checked file holds personal data; one nobody confirms is not kept for long.
UNCONFIRMED_KEPT_FOR = timedelta(days=7)
ATTRIBUTE_PREFIX = "attr:"
COLUMNS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "birthday",
    "home_store",
    "email_consent",
    "sms_consent",
)
_CONSENT_COLUMNS = {"email_consent": Channel.EMAIL, "sms_consent": Channel.SMS}
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclasses.dataclass
class ImportRow:
    line: int
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    locale: str = ""
    birthday: date | None = None
    home_store: Store | None = None
    consents: dict[str, bool] = dataclasses.field(default_factory=dict)
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ImportReport:
    """What a check or a run found: counts and one error per bad row (line number and message)."""

    total_rows: int = 0
    processed_rows: int = 0
    created: int = 0
    updated: int = 0
    errors: list[dict] = dataclasses.field(default_factory=list)
    error_count: int = 0
    #: per good row (dry run only): what the import would change, see ``_row_changes``
    changes: list[dict] = dataclasses.field(default_factory=list)

    def add_change(self, change: dict) -> None:
        if len(self.changes) < MAX_REPORTED_CHANGES:
            self.changes.append(change)

    def add_error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "error": message})


def import_text_decode(data: bytes) -> str:
    """The text of an uploaded file, or ``ImportFileError`` when it is not a UTF-8 CSV we accept."""
    if not data:
        raise ImportFileError("The file is empty.")
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it.")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ImportFileError(
            f"Line {line} contains a NUL byte: this looks like a spreadsheet file, not CSV. Save it as CSV UTF-8."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"Line {line} is not UTF-8 text. Save the file as CSV UTF-8 and upload it again."
        ) from exc


class _RecordTooLong(Exception):
    """Raised from inside the CSV reader's line feed: an open quote has swallowed too many lines."""


def _records(text: str) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(first line number, cells, problem) per CSV record; ``problem`` is set, and ``cells`` is
    ``None``, for a record that must be reported instead of imported.

    A person is one line. A quoted cell holding a line break makes its whole record (all its lines) one
    row error, never a row imported in part. A quote left open to the end of the file (or across more
    text than a row may hold) is a row error for the line where it opened, and reading starts again on
    the next line, so the rows after it still import instead of ending up inside one cell.
    """
    lines = io.StringIO(text, newline="").readlines()
    ends = [0]
    for physical in lines:
        ends.append(ends[-1] + len(physical))
    position = 0
    record_start = 0

    def feed(base: int) -> Iterator[str]:
        for index in range(base, len(lines)):
            # A row holds at most MAX_ROW_CHARS (plus its line ending); past that an open quote is broken.
            if index > record_start and ends[index + 1] - ends[record_start] > MAX_ROW_CHARS + 2:
                raise _RecordTooLong
            yield lines[index]

    while position < len(lines):
        base = position
        reader = csv.reader(feed(base), strict=True)
        while True:
            record_start = base + reader.line_num
            try:
                record = next(reader)
            except StopIteration:
                position = len(lines)
                break
            except (csv.Error, _RecordTooLong) as exc:
                end = base + reader.line_num
                if isinstance(exc, _RecordTooLong) or "end of data" in str(exc):
                    yield record_start + 1, None, "A quote opened on this line is never closed; close it or remove it."
                    position = record_start + 1
                else:
                    where = f"Lines {record_start + 1}-{end}" if end > record_start + 1 else "This line"
                    yield record_start + 1, None, f"{where} cannot be read as CSV ({exc}); check the quotes."
                    position = max(end, record_start + 1)
                break
            end = base + reader.line_num
            if end > record_start + 1:
                yield (
                    record_start + 1,
                    None,
                    f"Lines {record_start + 1}-{end} are one record: a cell contains a line break. "
                    "Put each person on one line.",
                )
            elif record and any(cell.strip() for cell in record):
                yield record_start + 1, record, None


def _header(cells: list[str]) -> list[str]:
    header = [
        cell.strip().lower() if not cell.strip().lower().startswith(ATTRIBUTE_PREFIX) else cell.strip()
        for cell in cells
    ]
    expected = ", ".join(COLUMNS) + f", {ATTRIBUTE_PREFIX}<name>"
    for name in header:
        if name.lower().startswith(ATTRIBUTE_PREFIX):
            if not _ATTRIBUTE_NAME.match(name[len(ATTRIBUTE_PREFIX) :]):
                raise ImportFileError(f"Column {name!r}: attribute names use letters, digits and _ (at most 64).")
        elif name not in COLUMNS:
            raise ImportFileError(
                f"Line 1 must be the header. Unknown column {name[:60]!r}; the columns are: {expected}."
            )
    if len(set(header)) != len(header):
        raise ImportFileError("The header names a column twice.")
    if "email" not in header and "phone" not in header:
        raise ImportFileError(f"The header needs an email or a phone column; the columns are: {expected}.")
    return header


def _parse_row(line: int, header: list[str], cells: list[str], stores: dict[str, Store]) -> ImportRow:
    """Turn one record into an ``ImportRow``; raises ``CustomerError`` with a message for the report."""
    if len(cells) != len(header):
        raise CustomerError(f"Expected {len(header)} columns, found {len(cells)}.")
    if sum(len(cell) for cell in cells) > MAX_ROW_CHARS:
        raise CustomerError(f"The row is longer than {MAX_ROW_CHARS} characters.")
    row = ImportRow(line=line)
    for name, raw in zip(header, cells, strict=True):
        value = raw.strip()
        if value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS):
            value = value[1:]  # undo the export's formula guard, so an export imports again
        if name.startswith(ATTRIBUTE_PREFIX):
            if len(value) > MAX_ATTRIBUTE_VALUE:
                raise CustomerError(f"{name}: at most {MAX_ATTRIBUTE_VALUE} characters.")
            if value:
                row.attributes[name[len(ATTRIBUTE_PREFIX) :]] = value
        elif name in _CONSENT_COLUMNS:
            lowered = value.lower()
            if lowered in _YES:
                row.consents[_CONSENT_COLUMNS[name]] = True
            elif lowered in _NO:
                row.consents[_CONSENT_COLUMNS[name]] = False
            elif lowered:
                raise CustomerError(f"{name}: write yes, no or leave it blank (found {value[:40]!r}).")
        elif name == "birthday":
            if value:
                try:
                    if not _DATE.match(value):
                        raise ValueError(value)
                    row.birthday = date.fromisoformat(value)
                except ValueError as exc:
                    raise CustomerError(f"birthday: use YYYY-MM-DD (found {value[:40]!r}).") from exc
                if row.birthday.year < 1900 or row.birthday > date.today():  # noqa: DTZ011
                    raise CustomerError("birthday: that date is not plausible.")
        elif name == "home_store":
            if value:
                store = stores.get(value.lower())
                if store is None:
                    raise CustomerError(f"home_store: no store has the code {value[:40]!r}.")
                row.home_store = store
        elif name in ("first_name", "last_name"):
            try:
                setattr(row, name, normalize_name(value, label=name.replace("_", " ")))
            except CustomerError as exc:
                raise CustomerError(f"{name}: {exc}") from exc
        elif name == "locale":
            if value and (len(value) > 16 or not _LOCALE.match(value)):
                raise CustomerError(f"locale: use a language code such as en or pt-BR (found {value[:40]!r}).")
            row.locale = value
        else:
            setattr(row, name, value)
    if not row.email and not row.phone:
        raise CustomerError("The row has neither an email nor a phone.")
    return row


_SUPPRESSED_MESSAGE = "{channel}_consent: this address is on the suppression list; it cannot be granted."


def _withdrawn_message(channel: str, withdrawn_at) -> str:
    when = f" on {withdrawn_at:%Y-%m-%d}" if withdrawn_at else ""
    return f"{channel}_consent: the customer withdrew this consent{when}; an import cannot grant it again."


def _normalized(row: ImportRow, *, region: str = "", check_suppression: bool = True) -> tuple[str | None, str | None]:
    """The row's email and phone, normalised; raises ``CustomerError`` naming the column.

    A phone without a + is read in the import's stated region, else in the row's home store's
    country, else in the default region: whoever uploads says how the whole file was written.
    """
    try:
        email = normalize_email(row.email) if row.email else None
    except CustomerError as exc:
        raise CustomerError(f"email: {exc}") from exc
    region = region or (row.home_store.country if row.home_store is not None else "")
    try:
        phone = normalize_phone(row.phone, region=region or None) if row.phone else None
    except CustomerError as exc:
        raise CustomerError(f"phone: {exc}") from exc
    if row.consents.get(Channel.EMAIL) and not email:
        raise CustomerError("email_consent is yes but the row has no email.")
    if row.consents.get(Channel.SMS) and not phone:
        raise CustomerError("sms_consent is yes but the row has no phone.")
    if row.consents.get(Channel.SMS) and (refusal := phone_sms_refusal(phone)):
        raise CustomerError(f"sms_consent: {refusal}")
    for channel, address in ((Channel.EMAIL, email), (Channel.SMS, phone)):
        if check_suppression and row.consents.get(channel) and address_is_suppressed(channel=channel, address=address):
            raise CustomerError(_SUPPRESSED_MESSAGE.format(channel=channel))
    return email, phone


def _rows(text: str) -> tuple[list[str], Iterator[tuple[int, list[str] | None, str | None]]]:
    records = _records(text)
    try:
        line, cells, problem = next(records)
    except StopIteration:
        raise ImportFileError("The file has no header line (it is empty).") from None
    if problem:
        raise ImportFileError(f"Line {line} must be the header: {problem}")
    return _header(cells), records


def import_phone_region(value: str | None) -> str:
    """The stated phone region of an import (ISO country code, blank for none) or ``ImportFileError``."""
    value = (value or "").strip().upper()
    if value and phone_region(value) is None:
        raise ImportFileError(f"{value[:10]!r} is not a country code for phone numbers, e.g. US or GB.")
    return value


def _stores() -> dict[str, Store]:
    return {store.code.lower(): store for store in Store.objects.all()}


CHECK_CHUNK = 1000


def customer_import_check(*, content: str, consent_basis: str = "", phone_region: str = "") -> ImportReport:
    """Dry run: read every row and report what an import would do; writes nothing.

    Raises ``ImportFileError`` for a file that cannot be read at all (no or wrong header, too many rows,
    consent granted without a stated basis). Bad rows are reported with their line numbers. Look-ups
    are made per chunk of rows (a handful of queries per thousand rows), so large files check fast.
    """
    region = import_phone_region(phone_region)
    header, records = _rows(content)
    stores = _stores()
    report = ImportReport()
    seen: tuple[set[str], set[str]] = (set(), set())
    grants = 0
    chunk: list[tuple[ImportRow, str | None, str | None]] = []
    for line, cells, problem in records:
        report.total_rows += 1
        if report.total_rows > MAX_ROWS:
            raise ImportFileError(f"The file has more than {MAX_ROWS} rows; split it.")
        if problem:
            report.add_error(line, problem)
            continue
        try:
            row = _parse_row(line, header, cells, stores)
            email, phone = _normalized(row, region=region, check_suppression=False)
        except CustomerError as exc:
            report.add_error(line, str(exc))
            continue
        chunk.append((row, email, phone))
        if len(chunk) >= CHECK_CHUNK:
            grants += _check_chunk(chunk, report, seen)
            chunk = []
    grants += _check_chunk(chunk, report, seen)
    report.errors.sort(key=lambda error: error["line"])
    if report.total_rows == 0:
        raise ImportFileError("The file has a header but no rows.")
    if grants and not consent_basis.strip():
        raise ImportFileError(
            f"{grants} consent(s) in this file say yes: state the basis on which they were given (e.g. "
            "'Paper sign-up forms, spring 2025 fair')."
        )
    return report


def _check_chunk(chunk, report: ImportReport, seen: tuple[set[str], set[str]]) -> int:
    """Suppression, earlier withdrawal and create-or-update for a chunk of parsed rows; returns grants."""
    if not chunk:
        return 0
    emails = {email.lower() for _row, email, _phone in chunk if email}
    phones = {phone for _row, _email, phone in chunk if phone}
    fields = ("pk", "email", "phone", "merged_into_id", *_COMPARED_FIELDS, "home_store_id", "attributes")
    by_email = {
        customer.email.lower(): customer
        for customer in Customer.objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=emails)
        .only(*fields)
    }
    by_phone = {customer.phone: customer for customer in Customer.objects.filter(phone__in=phones).only(*fields)}
    wanted_hmacs = {
        address_hmac(channel, address)
        for row, email, phone in chunk
        for channel, address in ((Channel.EMAIL, email), (Channel.SMS, phone))
        if address and row.consents.get(channel)
    }
    suppressed = set(Suppression.objects.filter(address_hmac__in=wanted_hmacs).values_list("channel", "address_hmac"))
    profile_ids = {c.merged_into_id or c.pk for c in (*by_email.values(), *by_phone.values())}
    # A row matching a merged profile updates the profile it was merged into.
    survivors = {c.pk: c for c in (*by_email.values(), *by_phone.values()) if c.merged_into_id is None}
    missing = profile_ids - set(survivors)
    if missing:
        survivors.update({c.pk: c for c in Customer.objects.filter(pk__in=missing).only(*fields)})
    states = {
        (state.customer_id, state.channel): state
        for state in ConsentState.objects.filter(customer_id__in=profile_ids).select_related("last_evidence")
    }
    withdrawn = {key: state.withdrawn_at for key, state in states.items() if state.status == ConsentStatus.WITHDRAWN}
    seen_emails, seen_phones = seen
    grants = 0
    for row, email, phone in chunk:
        key_email = email.lower() if email else None
        existing = by_email.get(key_email) or by_phone.get(phone)
        profile_id = (existing.merged_into_id or existing.pk) if existing else None
        try:
            for channel, address in ((Channel.EMAIL, email), (Channel.SMS, phone)):
                if not row.consents.get(channel):
                    continue
                if (channel, address_hmac(channel, address)) in suppressed:
                    raise CustomerError(_SUPPRESSED_MESSAGE.format(channel=channel))
                if (profile_id, channel) in withdrawn:
                    raise CustomerError(_withdrawn_message(channel, withdrawn[(profile_id, channel)]))
        except CustomerError as exc:
            report.add_error(row.line, str(exc))
            continue
        grants += sum(1 for wanted in row.consents.values() if wanted)
        earlier_row = (key_email and key_email in seen_emails) or (phone and phone in seen_phones)
        if existing is not None or earlier_row:
            report.updated += 1
        else:
            report.created += 1
        profile = survivors.get(profile_id) if profile_id else None
        phone_match = by_phone.get(phone)
        phone_profile_id = (phone_match.merged_into_id or phone_match.pk) if phone_match else None
        sms_profile_id = phone_profile_id if phone_profile_id and phone_profile_id != profile_id else profile_id
        report.add_change(
            _row_changes(
                row,
                email=email,
                phone=phone,
                profile=profile,
                phone_taken=phone_profile_id is not None and phone_profile_id != profile_id,
                states={
                    channel: states.get((sms_profile_id if channel == Channel.SMS else profile_id, channel))
                    for channel in row.consents
                },
                earlier_row=bool(earlier_row and existing is None),
            )
        )
        if key_email:
            seen_emails.add(key_email)
        if phone:
            seen_phones.add(phone)
    return grants


_COMPARED_FIELDS = ("first_name", "last_name", "locale", "birthday")


def _shown(value) -> str:
    return value.isoformat() if isinstance(value, date) else ("" if value is None else str(value))


def _consent_effect(channel: str, wanted: bool, state: ConsentState | None) -> tuple[str, str]:
    """(effect, sentence) of a consent cell for the profile it lands on, as ``_import_consent`` acts."""
    status = state.status if state else ConsentStatus.NONE
    label = Channel(channel).label
    since = ""
    if state is not None:
        when = state.withdrawn_at if status == ConsentStatus.WITHDRAWN else state.granted_at
        method = state.last_evidence.get_method_display() if state.last_evidence_id else ""
        since = " ".join(part for part in (f"on {when:%Y-%m-%d}" if when else "", f"via {method}" if method else ""))
        since = f" {since}" if since else ""
    if wanted:
        if status == ConsentStatus.GRANTED:
            return "leave", f"{label} consent already granted{since}: left as is, nothing recorded."
        if status == ConsentStatus.PENDING:
            return "leave", f"{label} consent already given{since}, awaiting confirmation: left as is."
        return "grant", f"Grants {label} consent (import evidence with the stated basis)."
    if status == ConsentStatus.GRANTED:
        return "withdraw", f"Withdraws the {label} consent granted{since}."
    if status == ConsentStatus.PENDING:
        return "withdraw", f"Withdraws the {label} consent given{since}, still awaiting confirmation."
    if status == ConsentStatus.WITHDRAWN:
        return "leave", f"{label} consent already withdrawn{since}: left as is, nothing recorded."
    return "refuse", f"Never asked: records a refusal of {label} (withdrawn), so nothing is sent on it."


def _row_changes(row: ImportRow, *, email, phone, profile, phone_taken: bool, states: dict, earlier_row: bool) -> dict:
    """What importing ``row`` would do to ``profile`` (``None``: a new profile), field by field.

    Mirrors ``customer_capture``: a blank cell never clears a value, an address is only added where
    the profile has none, the home store is only set where it has none, attributes are merged.
    """
    fields: list[list[str]] = []

    def compare(name: str, old, new) -> None:
        if new not in (None, "") and _shown(old) != _shown(new):
            fields.append([name, _shown(old), _shown(new)])

    if profile is None:
        old = dict.fromkeys(("email", "phone", *_COMPARED_FIELDS, "home_store"), "")
        old_attributes: dict = {}
        compare("email", "", email)
        compare("phone", "", phone)
    else:
        old = {name: getattr(profile, name) for name in _COMPARED_FIELDS}
        old_attributes = profile.attributes or {}
        if not profile.email:
            compare("email", "", email)
        if not profile.phone and not phone_taken:
            compare("phone", "", phone)
    for name in _COMPARED_FIELDS:
        compare(name, old[name], getattr(row, name) or None)
    if row.home_store is not None and (profile is None or profile.home_store_id is None):
        compare("home_store", "", row.home_store.code)
    for name, value in sorted(row.attributes.items()):
        compare(f"{ATTRIBUTE_PREFIX}{name}", old_attributes.get(name, ""), value)
    consents = []
    for channel, wanted in row.consents.items():
        effect, text = _consent_effect(channel, wanted, states.get(channel))
        consents.append(
            {"column": f"{channel}_consent", "value": "yes" if wanted else "no", "effect": effect, "text": text}
        )
    action = "create" if profile is None and not earlier_row else "update"
    return {
        "line": row.line,
        "action": action,
        "who": email or phone or "",
        "fields": fields,
        "consents": consents,
        "note": "Updates the profile an earlier row of this file creates." if earlier_row else "",
    }


def customer_import_create(
    *, file_name: str, data: bytes, consent_basis: str = "", phone_region: str = "", user=None
) -> CustomerImport:
    """Store an uploaded file with its dry-run report (status ``validated``); nothing is imported yet.

    ``phone_region`` (an ISO country code) is the country local phone numbers in the file are read in.
    Raises ``ImportFileError`` (and stores nothing) when the file cannot be read at all.
    """
    phone_region = import_phone_region(phone_region)
    text = import_text_decode(data)
    consent_basis = (consent_basis or "").strip()
    if "\x00" in consent_basis or len(consent_basis) > 500:
        raise ImportFileError("The basis must be plain text of at most 500 characters.")
    report = customer_import_check(content=text, consent_basis=consent_basis, phone_region=phone_region)
    return CustomerImport.objects.create(
        file_name=(file_name or "upload.csv").replace("\x00", "")[:255],
        content=text,
        content_sha256=hashlib.sha256(data).hexdigest(),
        consent_basis=consent_basis,
        phone_region=phone_region,
        status=CustomerImport.Status.VALIDATED,
        total_rows=report.total_rows,
        created_count=report.created,
        updated_count=report.updated,
        error_count=report.error_count,
        errors=report.errors,
        changes=report.changes,
        created_by=user,
    )


def customer_import_queue(*, customer_import: CustomerImport, enqueue: bool = True) -> bool:
    """Confirm a checked import: ``validated`` → ``queued`` and enqueue its run after commit.

    Compare-and-set, so confirming twice enqueues once. Returns whether this call queued it.
    ``enqueue=False`` is for a caller that runs ``customer_import_run`` itself (the command).
    """
    queued = CustomerImport.objects.filter(pk=customer_import.pk, status=CustomerImport.Status.VALIDATED).update(
        status=CustomerImport.Status.QUEUED,
        processed_rows=0,
        created_count=0,
        updated_count=0,
        error_count=0,
        errors=[],
        heartbeat_at=timezone.now(),
    )
    if queued and enqueue:
        _enqueue_run(customer_import.pk)
    return bool(queued)


def _enqueue_run(import_id: int) -> None:
    task_enqueue_on_commit("customers.customer_import_run", import_id)


def customer_imports_redrive(*, now=None) -> list[int]:
    """Imports whose task was lost: returns their ids for the caller to enqueue again.

    A ``running`` import without a heartbeat for ``IMPORT_LEASE`` (its worker died) goes back to
    ``queued``; it resumes after its last saved row (rows are idempotent, so a few may run twice).
    A ``queued`` import waiting longer than the lease is re-sent too; the claim in
    ``customer_import_run`` makes a second message for the same import a no-op.
    """
    now = now or timezone.now()
    cutoff = now - IMPORT_LEASE
    CustomerImport.objects.filter(status=CustomerImport.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=CustomerImport.Status.QUEUED, heartbeat_at=cutoff
    )
    stale = list(
        CustomerImport.objects.filter(status=CustomerImport.Status.QUEUED, heartbeat_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    )
    CustomerImport.objects.filter(pk__in=stale, status=CustomerImport.Status.QUEUED).update(heartbeat_at=now)
    return stale


def customer_imports_forget_unconfirmed(*, now=None) -> int:
    """Checked files never confirmed within ``UNCONFIRMED_KEPT_FOR`` are forgotten (personal data).

    Their content is cleared and they end as ``failed`` with a note; returns how many.
    """
    now = now or timezone.now()
    return CustomerImport.objects.filter(
        status=CustomerImport.Status.VALIDATED, created_at__lt=now - UNCONFIRMED_KEPT_FOR
    ).update(
        status=CustomerImport.Status.FAILED,
        content="",
        changes=[],
        finished_at=now,
        errors=[{"line": 0, "error": "Not confirmed in time; the file was discarded. Upload it again."}],
    )


def _import_consent(*, customer: Customer, channel: str, wanted: bool, evidence: Evidence) -> None:
    state = ConsentState.objects.filter(customer=customer, channel=channel).first()
    status = state.status if state else ConsentStatus.NONE
    if wanted:
        if status in (ConsentStatus.GRANTED, ConsentStatus.PENDING):
            return  # already given: re-importing must not grow the ledger
        if status == ConsentStatus.WITHDRAWN:
            raise CustomerError(_withdrawn_message(channel, state.withdrawn_at))
        consent_grant(customer=customer, channel=channel, evidence=evidence)
    elif status != ConsentStatus.WITHDRAWN:
        consent_withdraw(customer=customer, channel=channel, evidence=evidence)


def _import_row(row: ImportRow, *, customer_import: CustomerImport) -> bool:
    """Write one row (profile, then consents); returns whether a profile was created."""
    email, phone = _normalized(row, region=customer_import.phone_region)
    result = customer_capture(
        email=email,
        phone=phone,
        first_name=row.first_name,
        last_name=row.last_name,
        locale=row.locale or None,
        birthday=row.birthday,
        store=row.home_store,
        attributes=row.attributes or None,
        source=Source.IMPORT,
    )
    evidence = Evidence(
        method=ConsentMethod.IMPORT,
        basis=customer_import.consent_basis,
        source_reference=f"import:{customer_import.pk} line {row.line}",
        collected_by=customer_import.created_by,
    )
    for channel, wanted in row.consents.items():
        target = result.phone_customer if (channel == Channel.SMS and result.phone_customer) else result.customer
        _import_consent(customer=target, channel=channel, wanted=wanted, evidence=evidence)
    return result.created


def customer_import_run(
    *,
    import_id: int,
    progress: Callable[[ImportReport], None] | None = None,
    time_budget: float | None = RUN_TIME_BUDGET_SECONDS,
) -> CustomerImport:
    """Import a queued file: each row in its own savepoint; a bad row is reported and leaves no trace.

    Claims the import by compare-and-set (``queued`` → ``running``), so a duplicate task does
    nothing, and resumes after the last saved row. Progress (processed rows, counts, heartbeat) is
    saved every few rows. After ``time_budget`` seconds the import goes back to ``queued`` and its
    next slice is enqueued, so no task outlives the worker's time limit (``None``: run to the end).
    Idempotent in effect: a profile is found again by its email or phone, and a consent already
    granted is not granted again. Must not run inside an outer transaction (progress would not show).
    """
    claimed = CustomerImport.objects.filter(pk=import_id, status=CustomerImport.Status.QUEUED).update(
        status=CustomerImport.Status.RUNNING, heartbeat_at=timezone.now()
    )
    customer_import = CustomerImport.objects.select_related("created_by").get(pk=import_id)
    if not claimed:
        return customer_import
    report = ImportReport(
        processed_rows=customer_import.processed_rows,
        created=customer_import.created_count,
        updated=customer_import.updated_count,
        error_count=customer_import.error_count,
        errors=list(customer_import.errors or []),
    )
    deadline = time.monotonic() + time_budget if time_budget else None
    try:
        header, records = _rows(customer_import.content)
        stores = _stores()
        records = list(records)
        report.total_rows = len(records)
        for line, cells, problem in records[report.processed_rows :]:
            if deadline is not None and time.monotonic() > deadline:
                _save_progress(import_id, report, status=CustomerImport.Status.QUEUED)
                _enqueue_run(import_id)
                customer_import.refresh_from_db()
                return customer_import
            try:
                if problem:
                    raise CustomerError(problem)
                with transaction.atomic():
                    row = _parse_row(line, header, cells, stores)
                    if _import_row(row, customer_import=customer_import):
                        report.created += 1
                    else:
                        report.updated += 1
            except (CustomerError, IntegrityError, DataError) as exc:
                message = str(exc) if isinstance(exc, CustomerError) else "The row could not be saved."
                report.add_error(line, message)
            report.processed_rows += 1
            if report.processed_rows % PROGRESS_EVERY == 0:
                _save_progress(import_id, report)
                if progress:
                    progress(report)
    except (OperationalError, InterfaceError):
        raise  # the database went away: the import stays running and is re-driven after its lease
    except Exception:
        _save_progress(import_id, report, status=CustomerImport.Status.FAILED)
        raise
    _save_progress(import_id, report, status=CustomerImport.Status.DONE)
    # The rows are in the profiles now; keeping a second copy of personal data serves nobody (and
    # would outlive an erasure). The hash still identifies the file.
    CustomerImport.objects.filter(pk=import_id).update(content="", changes=[])
    if progress:
        progress(report)
    customer_import.refresh_from_db()
    return customer_import


def _save_progress(import_id: int, report: ImportReport, *, status: str | None = None) -> None:
    fields = {
        "heartbeat_at": timezone.now(),
        "total_rows": report.total_rows,
        "processed_rows": report.processed_rows,
        "created_count": report.created,
        "updated_count": report.updated,
        "error_count": report.error_count,
        "errors": report.errors,
    }
    if status is not None:
        fields["status"] = status
    if status in (CustomerImport.Status.DONE, CustomerImport.Status.FAILED):
        fields["finished_at"] = timezone.now()
    CustomerImport.objects.filter(pk=import_id).update(**fields)
