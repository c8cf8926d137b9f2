"""Extension points that apps above loyalty fill from their ``AppConfig.ready``.

A bonus window limited to a segment needs someone who knows segments (campaigns). Until a resolver
is registered, such a window applies to nobody: failing closed never hands out unbudgeted points.
"""

from __future__ import annotations

from collections.abc import Callable

SegmentResolver = Callable[..., bool]  # (*, segment_reference: str, customer) -> bool

_segment_resolver: SegmentResolver | None = None


def segment_resolver_register(resolver: SegmentResolver | None) -> None:
    global _segment_resolver
    _segment_resolver = resolver


def customer_in_segment(*, segment_reference: str, customer) -> bool:
    if _segment_resolver is None:
        return False
    return bool(_segment_resolver(segment_reference=segment_reference, customer=customer))
