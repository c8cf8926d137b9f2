"""Panels of the customer's 360° header from apps above customers (loyalty, deliveries, journeys).

An app calls ``header_source_register("loyalty", fn, order=10)`` from its ``AppConfig.ready``; ``fn``
takes ``(customer, profile_ids)`` (the surviving profile, and its id with the ids of every profile
merged into it) and returns a ``HeaderPanel`` or ``None`` (nothing to show). The header shows the
registered panels after its own (consent, preferences, purchases), in ``order``. A panel the header
has a place for but no app provides yet (open journeys) is simply absent: registering it under the
name ``"journeys"`` is all a journeys app needs to do.

``purchase_refunds_register(name, fn)`` lets the app that records refunds (loyalty) say which
purchases were refunded, ``fn(profile_ids) -> {purchase id: refunded amount}``, so lifetime value can
subtract them. customers never imports those apps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from decimal import Decimal


@dataclasses.dataclass(frozen=True)
class HeaderLine:
    label: str
    value: str
    #: a quieter second line, e.g. the date and the store
    note: str = ""
    #: a link for the value (an admin page), never customer-provided
    url: str = ""


@dataclasses.dataclass(frozen=True)
class HeaderPanel:
    key: str
    title: str
    lines: list[HeaderLine]
    #: shown instead of the lines when there are none
    empty_text: str = ""


HeaderSource = Callable[..., HeaderPanel | None]  # (customer, profile_ids) -> HeaderPanel | None
RefundSource = Callable[[list[int]], Mapping[int, Decimal]]

_sources: dict[str, tuple[int, HeaderSource]] = {}
_refund_sources: dict[str, RefundSource] = {}


def header_source_register(name: str, source: HeaderSource, *, order: int = 100) -> None:
    """Register (or replace, by name, so a reloaded app does not add twice) a header panel source."""
    _sources[name] = (order, source)


def header_source_unregister(name: str) -> None:
    _sources.pop(name, None)


def header_sources() -> list[HeaderSource]:
    return [source for _order, source in sorted(_sources.values(), key=lambda item: item[0])]


def purchase_refunds_register(name: str, source: RefundSource) -> None:
    _refund_sources[name] = source


def purchase_refunds_unregister(name: str) -> None:
    _refund_sources.pop(name, None)


def purchase_refund_sources() -> list[RefundSource]:
    return list(_refund_sources.values())
