"""Order endpoints: authenticate, read a bounded JSON body, hand it to ``customers.services.orders``.

Key-authenticated, so exempt from CSRF; they read no session and set no cookie.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from customers.exceptions import CustomerError, PurchaseConflict
from customers.services.api_keys import api_key_authenticate
from customers.services.orders import OrderOutcome, order_clean, order_record

MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_ORDERS = 500
MAX_BATCH_BODY_BYTES = 2 * 1024 * 1024


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str, field: str = "") -> JsonResponse:
    return JsonResponse({"errors": [{"field": field, "message": message}]}, status=status)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _guarded(view):
    """POST only, with a valid key: the answers every endpoint shares before reading the body."""

    @csrf_exempt
    def wrapper(request: HttpRequest) -> JsonResponse:
        if request.method != "POST":
            response = _error(405, "Use POST.")
            response["Allow"] = "POST"
            return response
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or api_key_authenticate(presented) is None:
            response = _error(401, "Send a valid, unrevoked API key as 'Authorization: Bearer <key>'.")
            response["WWW-Authenticate"] = 'Bearer realm="tandem"'
            return response
        try:
            return view(request)
        except _BodyError as exc:
            return _error(exc.status, str(exc))

    return wrapper


def _json_body(request: HttpRequest, limit: int):
    """The decoded JSON body; amounts with decimals stay exact (``Decimal``, never float)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise _BodyError(413, f"The body is larger than {limit // 1024} KB.")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise _BodyError(413, f"The body is larger than {limit // 1024} KB.")
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BodyError(400, "The body is not valid UTF-8 JSON.") from exc


def _recorded(outcome: OrderOutcome) -> dict:
    return {
        "id": str(outcome.purchase.public_id),
        "created": outcome.created,
        "customer": {"id": str(outcome.purchase.customer.public_id), "created": outcome.customer_created},
    }


def _one(data) -> tuple[int, dict]:
    """(HTTP status, answer) for one order."""
    order, errors = order_clean(data)
    if errors:
        return 400, {"errors": errors}
    try:
        outcome = order_record(order=order)
    except PurchaseConflict as exc:
        return 409, {"errors": [{"field": "external_ref", "message": str(exc)}]}
    except CustomerError as exc:
        return 400, {"errors": [{"field": "", "message": str(exc)}]}
    return (201 if outcome.created else 200), _recorded(outcome)


@_guarded
def purchase_create(request: HttpRequest) -> JsonResponse:
    """Record one order: 201 when new, 200 for a repeat, 400 / 409 with errors and nothing written."""
    status, answer = _one(_json_body(request, MAX_BODY_BYTES))
    return JsonResponse(answer, status=status)


_STATUS_NAMES = {201: "created", 200: "repeat", 400: "invalid", 409: "conflict"}


@_guarded
def purchase_batch_create(request: HttpRequest) -> JsonResponse:
    """Record up to 500 orders, each on its own (one bad order does not stop the others)."""
    data = _json_body(request, MAX_BATCH_BODY_BYTES)
    orders = data.get("orders") if isinstance(data, dict) else None
    if not isinstance(orders, list) or not orders:
        return _error(400, 'Send {"orders": [ … ]} with at least one order.', "orders")
    if len(orders) > MAX_BATCH_ORDERS:
        return _error(400, f"Send at most {MAX_BATCH_ORDERS} orders at a time.", "orders")
    results = []
    for index, item in enumerate(orders):
        status, answer = _one(item)
        results.append({"index": index, "status": _STATUS_NAMES[status], **answer})
    return JsonResponse({"results": results}, status=200)
