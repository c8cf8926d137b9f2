"""Staff edits of a profile and staff consent changes, with the same rules as capture."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from customers.exceptions import ConsentError, CustomerError, InvalidContact, InvalidText
from customers.lock_objects import customer_qs_select_for_update, customers_lock
from customers.models import Channel, ConsentEvidence, ConsentMethod, ConsentState, ConsentStatus, Customer, Store
from customers.normalization import normalize_email, normalize_name, normalize_phone, phone_sms_refusal
from customers.selectors import suppressed_channels
from customers.services.consent import Evidence, consent_grant, consent_withdraw
from customers.services.profiles import MAX_NAME_LENGTH, customer_refresh_derived
from customers.transactions import atomic_retry

EDITABLE_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "time_zone",
    "birthday",
    "home_store",
    "attributes",
)
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
MAX_STAFF_TEXT = 500
MAX_ATTRIBUTE_NAME = 64


class ProfileFieldError(CustomerError):
    """A refused value for one profile field; ``field`` names it so a form can show it in place."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _no_nul(field: str, value: str) -> str:
    if "\x00" in value:
        raise ProfileFieldError(field, "This contains an invisible character.")
    return value


def profile_changes_clean(*, customer: Customer, changes: dict[str, Any]) -> dict[str, Any]:
    """Normalise and check proposed profile values; returns the clean values, writes nothing.

    Emails and phones are normalised (blank clears them; a local phone number is read in the home
    store's country); an address another profile holds is refused, since one person has one profile.
    Names go through ``normalize_name`` like every other entry point. Raises ``ProfileFieldError`` for
    the first bad field, and ``CustomerError`` when the edit would leave the profile with neither an
    email nor a phone (nobody could reach it, and no capture could ever find it again).
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise CustomerError(f"These fields cannot be edited: {', '.join(sorted(unknown))}.")
    home_store = changes.get("home_store", customer.home_store)
    region = home_store.country if isinstance(home_store, Store) else None
    clean: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "email":
            value = (value or "").strip()
            try:
                clean[field] = normalize_email(value) if value else None
            except InvalidContact as exc:
                raise ProfileFieldError(field, str(exc)) from exc
            if clean[field]:
                holder = Customer.objects.with_email(clean[field]).exclude(pk=customer.pk).first()
                if holder is not None:
                    raise ProfileFieldError(field, f"Another profile ({holder.public_id}) already has this email.")
        elif field == "phone":
            value = (value or "").strip()
            try:
                clean[field] = normalize_phone(value, region=region) if value else None
            except InvalidContact as exc:
                raise ProfileFieldError(field, str(exc)) from exc
            if clean[field]:
                holder = Customer.objects.with_phone(clean[field]).exclude(pk=customer.pk).first()
                if holder is not None:
                    raise ProfileFieldError(field, f"Another profile ({holder.public_id}) already has this phone.")
        elif field in ("first_name", "last_name"):
            try:
                clean[field] = normalize_name(value, label=field.replace("_", " "), max_length=MAX_NAME_LENGTH)
            except InvalidText as exc:
                raise ProfileFieldError(field, str(exc)) from exc
        elif field == "locale":
            value = _no_nul(field, (value or "").strip())
            if (value and not _LOCALE.match(value)) or len(value) > 16:
                raise ProfileFieldError(field, "Use a language code such as en or pt-BR.")
            clean[field] = value or "en"
        elif field == "time_zone":
            value = _no_nul(field, (value or "").strip())
            if value:
                from django.core.exceptions import ValidationError

                from customers.models import validate_time_zone

                try:
                    validate_time_zone(value)
                except ValidationError as exc:
                    raise ProfileFieldError(field, f"{value!r} is not an IANA time zone such as Europe/Paris.") from exc
            clean[field] = value
        elif field == "birthday":
            if value is not None and not isinstance(value, date):
                raise ProfileFieldError(field, "Give a date such as 1990-05-17.")
            if value is not None and (value.year < 1900 or value > date.today()):  # noqa: DTZ011
                raise ProfileFieldError(field, "That birthday is not plausible.")
            clean[field] = value
        elif field == "home_store":
            if value is not None and not isinstance(value, Store):
                raise ProfileFieldError(field, "Choose a store.")
            clean[field] = value
        elif field == "attributes":
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise ProfileFieldError(field, "Custom attributes must be a JSON object.")
            clean[field] = value
    if ("email" in clean or "phone" in clean) and customer.is_active_profile:
        email = clean.get("email", customer.email)
        phone = clean.get("phone", customer.phone)
        if not email and not phone:
            raise CustomerError(
                "A profile needs an email address or a phone number; keep one of them "
                "(to forget the person, use Erase instead)."
            )
    return clean


def customers_attribute_set(*, customer_ids, name: str, value: str | int | float | bool) -> int:
    """Set one custom attribute on many profiles at once (an automation's batch), keeping their others.

    Two statements whatever the number of profiles, inside the caller's transaction: the profiles are
    locked in primary-key order (``customers.lock_objects``), then one UPDATE merges ``{name: value}``
    into the attributes of those still active (merged or erased profiles are left alone). Returns how
    many changed. Raises ``ProfileFieldError`` for a blank name, text with an invisible character or
    a value that is not text, a number or a boolean (nothing written).
    """
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_ATTRIBUTE_NAME:
        raise ProfileFieldError("attributes", f"Name the attribute (at most {MAX_ATTRIBUTE_NAME} characters).")
    if isinstance(value, str):
        _no_nul("attributes", value)
    elif not isinstance(value, int | float | bool):
        raise ProfileFieldError("attributes", "An attribute is text, a number or yes/no.")
    _no_nul("attributes", name)
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    locked = list(customer_qs_select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
    table = connection.ops.quote_name(Customer._meta.db_table)
    # A merge patch of one key: the key and value travel as one JSON parameter, never inside the SQL.
    merged = (
        "COALESCE(attributes, CAST('{}' AS jsonb)) || CAST(%s AS jsonb)"
        if connection.vendor == "postgresql"
        else "json_patch(COALESCE(attributes, '{}'), %s)"
    )
    if connection.vendor == "postgresql":
        chosen, chosen_params = "id = ANY(CAST(%s AS bigint[]))", [locked]  # one parameter, not thousands
    else:
        chosen, chosen_params = f"id IN ({', '.join(['%s'] * len(locked)) or 'NULL'})", locked
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET attributes = {merged}, updated_at = %s "  # noqa: S608 (table name, placeholders)
            f"WHERE {chosen} AND merged_into_id IS NULL AND erased_at IS NULL",
            [json.dumps({name: value}), connection.ops.adapt_datetimefield_value(timezone.now()), *chosen_params],
        )
        return max(cursor.rowcount, 0)


@dataclasses.dataclass
class ProfileUpdate:
    customer: Customer
    #: channels whose consent was withdrawn because their address changed
    withdrawn_channels: list[str] = dataclasses.field(default_factory=list)


@atomic_retry
def customer_update_profile(*, customer: Customer, user, changes: dict[str, Any]) -> ProfileUpdate:
    """Apply staff edits to a profile, keeping everything derived from them right.

    Locks the profile (``customers.lock_objects``); a lock conflict is retried. Values go through
    ``profile_changes_clean``; address hashes and the time zone are recomputed. When the email or
    phone changes, a consent given for the old address does not carry over: it is withdrawn
    (method=admin) with a note, so nobody is messaged at an address that never agreed. Raises
    ``ProfileFieldError`` / ``CustomerError`` and then writes nothing.
    """
    customer = customers_lock([customer.pk])[customer.pk]
    if not customer.is_active_profile:
        raise CustomerError("This profile was merged or erased and can no longer be edited.")
    clean = profile_changes_clean(customer=customer, changes=changes)
    old_email, old_phone = customer.email, customer.phone
    for field, value in clean.items():
        setattr(customer, field, value)
    if "time_zone" in clean:
        customer.time_zone_source = (
            Customer.TimeZoneSource.EXPLICIT if clean["time_zone"] else Customer.TimeZoneSource.DEFAULT
        )
    customer_refresh_derived(customer)
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        raise CustomerError("Another profile took this email or phone a moment ago.") from exc

    changed_channels = []
    if (old_email or "").lower() != (customer.email or "").lower():
        changed_channels.append(Channel.EMAIL)
    if old_phone != customer.phone:
        changed_channels.append(Channel.SMS)
    live = (ConsentStatus.GRANTED, ConsentStatus.PENDING)
    update = ProfileUpdate(customer=customer)
    for channel in changed_channels:
        if ConsentState.objects.filter(customer=customer, channel=channel, status__in=live).exists():
            update.withdrawn_channels.append(channel)
            consent_withdraw(
                customer=customer,
                channel=channel,
                evidence=Evidence(
                    method=ConsentMethod.ADMIN,
                    collected_by=user,
                    note="Address changed by staff; the consent covered the previous address.",
                ),
            )
    return update


def consent_grant_by_staff(*, customer: Customer, channel: str, basis: str, user, note: str = "") -> ConsentEvidence:
    """Record a consent a staff member collected (method=admin), with the stated basis.

    Refuses a suppressed address, a profile that withdrew and a missing basis; otherwise as
    ``consent_grant`` (no double opt-in for staff grants). Raises ``ConsentError``.
    """
    basis = (basis or "").strip()
    if not basis:
        raise ConsentError("State the basis on which this consent was given.")
    if "\x00" in basis or "\x00" in note:
        raise ConsentError("The text contains an invisible character.")
    if len(basis) > MAX_STAFF_TEXT or len(note) > MAX_STAFF_TEXT:
        raise ConsentError(f"Keep the basis and note under {MAX_STAFF_TEXT} characters.")
    if channel in suppressed_channels(customer):
        raise ConsentError(f"{customer}: the {channel} address is on the suppression list.")
    if channel == Channel.SMS and customer.phone and (refusal := phone_sms_refusal(customer.phone)):
        raise ConsentError(f"{customer}: {refusal}")
    return consent_grant(
        customer=customer,
        channel=channel,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=user, basis=basis, note=note.strip()),
    )


def consent_withdraw_by_staff(*, customer: Customer, channel: str, user, note: str) -> ConsentEvidence:
    """Record a withdrawal that reached staff (phone call, letter); the note says how."""
    note = (note or "").strip()
    if not note:
        raise ConsentError("Say how the customer withdrew (e.g. phone call on 3 May).")
    if "\x00" in note or len(note) > MAX_STAFF_TEXT:
        raise ConsentError(f"The note must be plain text under {MAX_STAFF_TEXT} characters.")
    if channel not in Channel.values:
        raise ConsentError(f"Unknown channel {channel!r}.")
    return consent_withdraw(
        customer=customer,
        channel=channel,
        evidence=Evidence(method=ConsentMethod.ADMIN, collected_by=user, note=note),
    )
