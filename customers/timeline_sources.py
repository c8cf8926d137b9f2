"""Extra timeline entries from apps above customers (deliveries, loyalty), registered at start-up.

An app calls ``timeline_source_register("loyalty.ledger", fn)`` from its ``AppConfig.ready``; ``fn``
takes the list of profile ids (the customer and every profile merged into it) and returns an
iterable of ``customers.selectors.TimelineEntry``. customers never imports those apps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from customers.selectors import TimelineEntry

TimelineSource = Callable[[list[int]], Iterable[TimelineEntry]]

_sources: dict[str, TimelineSource] = {}


def timeline_source_register(name: str, source: TimelineSource) -> None:
    """Register (or replace, by name, so a reloaded app does not add twice) a timeline source."""
    _sources[name] = source


def timeline_source_unregister(name: str) -> None:
    _sources.pop(name, None)


def timeline_sources() -> list[TimelineSource]:
    return list(_sources.values())
