"""Segment writes: creating and editing segments, uploading a static list."""

from __future__ import annotations

import csv
import dataclasses
import io

from django.db import transaction
from django.db.models.functions import Lower

from campaigns import events
from campaigns.exceptions import CampaignError
from campaigns.models import Segment, SegmentMember
from customers.exceptions import InvalidContact
from customers.models import Customer
from customers.normalization import normalize_email, normalize_phone

MAX_ROWS = 200_000


@dataclasses.dataclass
class ListLoadReport:
    matched: int = 0
    added: int = 0
    unmatched: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)  # (line, value, why)


_AUDITED_FIELDS = ("name", "kind", "description", "is_persona", "is_active", "rules")


@transaction.atomic
def segment_save(*, segment: Segment, actor) -> Segment:
    """Create or edit a segment (already validated) and record the change in the audit trail.

    The audit entry carries the new value of each field that differs from the stored row. Saving an
    unchanged segment writes no entry.
    """
    created = segment.pk is None
    if created:
        segment.created_by = actor if getattr(actor, "is_authenticated", False) else None
        changes = {}
    else:
        stored = Segment.objects.get(pk=segment.pk)
        changes = {
            name: getattr(segment, name)
            for name in _AUDITED_FIELDS
            if getattr(stored, name) != getattr(segment, name)
        }
    segment.save()
    if created or changes:
        events.segment_changed_event(segment=segment, actor=actor, created=created, changes=changes)
    return segment


@transaction.atomic
def segment_static_load(*, segment: Segment, content: str, actor, replace: bool = False) -> ListLoadReport:
    """Add the customers named in ``content`` (one email or phone per line, or a CSV whose first
    column holds them) to a static segment. Unknown or malformed rows are reported, never half-added.
    Idempotent: a customer already in the list is not added twice.
    """
    if segment.kind != Segment.Kind.STATIC:
        raise CampaignError("Only an uploaded-list segment takes a list.")
    if "\x00" in content:
        raise CampaignError("The file contains a NUL character; upload plain text or CSV.")
    report = ListLoadReport()
    emails: dict[str, int] = {}
    phones: dict[str, int] = {}
    rows = list(csv.reader(io.StringIO(content)))
    if len(rows) > MAX_ROWS:
        raise CampaignError(f"Upload at most {MAX_ROWS:,} rows at a time.")
    for line, row in enumerate(rows, start=1):
        value = (row[0] if row else "").strip()
        if not value or (line == 1 and value.lower() in {"email", "phone", "contact"}):
            continue
        try:
            if "@" in value:
                emails[normalize_email(value).lower()] = line
            else:
                phones[normalize_phone(value)] = line
        except InvalidContact as exc:
            report.unmatched.append((line, value[:100], str(exc)))
    found: dict[int, int] = {}
    active = Customer.objects.active()
    if emails:
        for email_lower, pk in (
            active.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=list(emails))
            .values_list("email_lower", "pk")
        ):
            found[pk] = emails.pop(email_lower)
    if phones:
        for phone, pk in active.filter(phone__in=list(phones)).values_list("phone", "pk"):
            found[pk] = phones.pop(phone)
    for value, line in [*emails.items(), *phones.items()]:
        report.unmatched.append((line, value[:100], "No customer with this address."))
    report.unmatched.sort()
    if replace:
        SegmentMember.objects.filter(segment=segment).exclude(customer_id__in=list(found)).delete()
    existing = set(SegmentMember.objects.filter(segment=segment).values_list("customer_id", flat=True))
    new = [SegmentMember(segment=segment, customer_id=pk) for pk in found if pk not in existing]
    SegmentMember.objects.bulk_create(new, ignore_conflicts=True)
    report.matched, report.added = len(found), len(new)
    events.segment_list_uploaded_event(
        segment=segment, actor=actor, matched=report.matched, unmatched=len(report.unmatched)
    )
    return report
