"""Orders sent by an outside system (an online shop, a till): checked field by field, then recorded.

The API hands each order here; ``order_clean`` says everything wrong with it at once, by field, before
anything is written, and ``order_record`` finds or creates the buyer's profile and records the purchase
through ``purchase_record`` in one transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from customers.exceptions import CustomerError
from customers.models import Customer, ProductCategory, Purchase, Source, Store
from customers.normalization import normalize_email, normalize_phone
from customers.selectors import customer_find_by_contact
from customers.services.profiles import _clean_amount, customer_capture, product_categories_clean, purchase_record
from customers.transactions import atomic_retry

#: Orders sent through the API are recorded under their own source: the order number is unique among
#: them, and a retry through the API never collides with a receipt typed at a till or in the admin.
ORDER_SOURCE = Purchase.Source.API
FIELDS = {
    "external_ref",
    "amount",
    "discount_amount",
    "currency",
    "occurred_at",
    "channel",
    "store",
    "categories",
    "customer",
}
CUSTOMER_FIELDS = {"email", "phone", "id"}
# A clock a little ahead is tolerated; an order dated days ahead is a mistake.
FUTURE_TOLERANCE = timedelta(hours=1)
EARLIEST_YEAR = 2000
MAX_TEXT = 320


@dataclasses.dataclass
class Order:
    """An order that passed ``order_clean``: every value typed and checked."""

    external_ref: str
    amount: Decimal
    discount_amount: Decimal
    currency: str
    occurred_at: datetime
    channel: str
    store: Store | None
    categories: list[ProductCategory]
    customer: Customer | None = None
    email: str | None = None
    phone: str | None = None


@dataclasses.dataclass
class OrderOutcome:
    purchase: Purchase
    created: bool
    customer_created: bool


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.items.append({"field": field, "message": message})


def _text(data: dict, field: str, errors: _Errors, *, required: bool = True) -> str | None:
    value = data.get(field)
    if field == "external_ref" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # shops often number their orders
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(field, "This field is required.")
        return None
    if not isinstance(value, str):
        errors.add(field, "Give this field as a string.")
        return None
    if len(value) > MAX_TEXT or not value.isprintable():
        errors.add(field, f"Give at most {MAX_TEXT} characters on one line.")
        return None
    return value.strip()


def _amount(data: dict, field: str, errors: _Errors, *, required: bool) -> Decimal | None:
    value = data.get(field)
    if value is None:
        if required:
            errors.add(field, "This field is required.")
        return None if required else Decimal(0)
    try:
        return _clean_amount(value, field.replace("_", " "))
    except CustomerError as exc:
        errors.add(field, str(exc))
        return None


def _occurred_at(data: dict, errors: _Errors, now: datetime) -> datetime | None:
    value = _text(data, "occurred_at", errors)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.year < EARLIEST_YEAR:
            # Also keeps year 1 with a positive offset from overflowing when read in UTC.
            errors.add("occurred_at", f"The order is dated before {EARLIEST_YEAR}.")
            return None
    except ValueError:
        errors.add("occurred_at", "Give an ISO 8601 date and time, e.g. 2026-03-02T14:05:00+01:00.")
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors.add("occurred_at", "Give the time with its UTC offset, e.g. +01:00 or Z.")
        return None
    if moment > now + FUTURE_TOLERANCE:
        errors.add("occurred_at", "The order is dated in the future.")
        return None
    return moment


def _store(data: dict, channel: str | None, errors: _Errors) -> Store | None:
    value = data.get("store")
    if value is None or value == "":
        if channel == Purchase.Channel.STORE:
            errors.add("store", "An in-store order needs its store (code or id).")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or len(str(value)) > 32:
        errors.add("store", "Give the store's code or id.")
        return None
    if isinstance(value, int) and not 0 < value < 2**31:
        errors.add("store", f"No store has the id {value}.")
        return None
    found = Store.objects.filter(**{"pk" if isinstance(value, int) else "code": value}).first()
    if found is None:
        errors.add("store", f"No store has the code or id {str(value)!r}.")
    return found


def _categories(data: dict, errors: _Errors) -> list[ProductCategory]:
    value = data.get("categories")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        errors.add("categories", "Give a list of product category names.")
        return []
    try:
        return product_categories_clean(value)
    except CustomerError as exc:
        errors.add("categories", str(exc))
        return []


def _customer(data: dict, store: Store | None, errors: _Errors) -> tuple[Customer | None, str | None, str | None]:
    value = data.get("customer")
    if not isinstance(value, dict) or not value:
        errors.add("customer", 'Give the buyer as {"email": …}, {"phone": …} or {"id": …}.')
        return None, None, None
    for unknown in sorted(set(value) - CUSTOMER_FIELDS):
        errors.add(f"customer.{unknown}", "Unknown field.")
    if "id" in value:
        if set(value) & {"email", "phone"}:
            errors.add("customer", "Give the customer's id, or their email and/or phone, not both.")
            return None, None, None
        try:
            public_id = uuid.UUID(str(value["id"]))
        except ValueError:
            errors.add("customer.id", "Give the customer's id as Tandem shows it (a UUID).")
            return None, None, None
        customer = Customer.objects.filter(public_id=public_id, erased_at__isnull=True).first()
        if customer is None:
            errors.add("customer.id", "No customer has this id.")
        return customer, None, None
    email = phone = None
    if value.get("email") is not None:
        try:
            email = normalize_email(value["email"]) if isinstance(value["email"], str) else None
        except CustomerError as exc:
            errors.add("customer.email", str(exc))
        else:
            if email is None:
                errors.add("customer.email", "Give the email address as a string.")
    if value.get("phone") is not None:
        try:
            region = store.country if store is not None else None
            phone = normalize_phone(value["phone"], region=region)
        except CustomerError as exc:
            errors.add("customer.phone", str(exc))
    if value.get("email") is None and value.get("phone") is None:
        errors.add("customer", "Give the buyer's email, phone or id.")
    return None, email, phone


def order_clean(data, *, now: datetime | None = None) -> tuple[Order | None, list[dict[str, str]]]:
    """Check an order as received (decoded JSON); returns (order, []) or (None, errors).

    Each error is ``{"field": …, "message": …}``; every field is checked, so one answer lists every
    mistake. Reads stores, product categories and customers; writes nothing.
    """
    errors = _Errors()
    if not isinstance(data, dict):
        errors.add("", "Send the order as a JSON object.")
        return None, errors.items
    now = now or timezone.now()
    for unknown in sorted(set(data) - FIELDS):
        errors.add(unknown, "Unknown field.")
    external_ref = _text(data, "external_ref", errors)
    if external_ref is not None and len(external_ref) > 100:
        errors.add("external_ref", "Give an order number of at most 100 characters.")
    amount = _amount(data, "amount", errors, required=True)
    discount = _amount(data, "discount_amount", errors, required=False)
    if amount is not None and discount is not None and discount > amount:
        errors.add("discount_amount", "The discount cannot exceed the amount.")
    currency = _text(data, "currency", errors)
    if currency is not None:
        currency = currency.upper()
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            errors.add("currency", "Give a three-letter currency code such as USD.")
    occurred_at = _occurred_at(data, errors, now)
    channel = data.get("channel")
    if channel not in Purchase.Channel.values:
        errors.add("channel", 'Give "online" or "store".')
        channel = None
    store = _store(data, channel, errors)
    categories = _categories(data, errors)
    customer, email, phone = _customer(data, store, errors)
    if errors.items:
        return None, errors.items
    order = Order(
        external_ref=external_ref,
        amount=amount,
        discount_amount=discount,
        currency=currency,
        occurred_at=occurred_at,
        channel=channel,
        store=store,
        categories=categories,
        customer=customer,
        email=email,
        phone=phone,
    )
    return order, []


#: the profile source of a buyer first seen through each purchase source
_PROFILE_SOURCE = {Purchase.Source.API: Source.API, Purchase.Source.IMPORT: Source.IMPORT}


@atomic_retry
def order_record(*, order: Order, source: str = ORDER_SOURCE) -> OrderOutcome:
    """Record a checked order; idempotent per (source, order number) (``purchase_record``).

    The buyer is the profile given by id, or the surviving profile holding the email or phone; an
    unknown buyer gets a new profile with source API (or import, for ``source="import"``) and no
    consent (an order is not consent to marketing). One transaction: when ``purchase_record`` refuses
    (``PurchaseConflict`` for a repeat with other details), a profile made for it is rolled back too.
    Locks the person.
    """
    customer, customer_created = order.customer, False
    if customer is None:
        customer = customer_find_by_contact(email=order.email, phone=order.phone)
    if customer is None:
        captured = customer_capture(email=order.email, phone=order.phone, source=_PROFILE_SOURCE[source])
        customer, customer_created = captured.customer, captured.created
    purchase, created = purchase_record(
        customer=customer,
        channel=order.channel,
        source=source,
        external_ref=order.external_ref,
        amount=order.amount,
        discount_amount=order.discount_amount,
        currency=order.currency,
        occurred_at=order.occurred_at,
        store=order.store,
        categories=order.categories,
    )
    return OrderOutcome(purchase=purchase, created=created, customer_created=customer_created)
