"""The send step's pace: batches as big as the provider's shared bucket allows, and retry delays.

A chunk's payloads for one provider go out in batches: each batch is what one ``acquire`` granted
(one round trip for the whole remainder, not one per message). Between batches the task sleeps for
the bucket's wait when that is short and the chunk's waiting budget allows; otherwise the rest of the
chunk is handed back to be queued again with ``not_before`` set to when its tokens should be there
(never dropped, and the attempt it was claimed with is not counted). A provider that throttles (429)
blocks its bucket for every worker until its Retry-After has passed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings

from campaigns.delivery.conf import conf
from campaigns.delivery.ratelimit import buckets, limit_for


class Clock:
    """Real time. The buckets read Redis's own clock (``bucket_time`` None), the same for every worker."""

    def bucket_time(self) -> float | None:
        return None

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


logger = logging.getLogger(__name__)

# With the limiter's store unreachable, a chunk's unsent rows come back this much later.
_OUTAGE_RETRY_SECONDS = 60

clock = Clock()  # tests put a fake clock here
_random = random.Random()  # noqa: S311 (jitter, not a secret)


def retry_delay(*, attempt: int, retry_after: float | None = None) -> float:
    """Seconds before a transient failure's ``attempt``-th retry: full jitter, or the provider's Retry-After.

    Uniform in ``[0, min(DELIVERY_RETRY_MAX_SECONDS, base * 2 ** (attempt - 1))]`` so retries of a failed
    batch spread out instead of returning together; never less than ``retry_after`` (capped at a day).
    """
    ceiling = min(conf("DELIVERY_RETRY_MAX_SECONDS"), conf("DELIVERY_RETRY_BASE_SECONDS") * 2 ** max(attempt - 1, 0))
    delay = _random.uniform(0, ceiling)
    if retry_after:
        delay = max(delay, min(float(retry_after), 86_400.0))
    return delay


def _key(backend, payload) -> str | None:
    key_of = getattr(backend, "rate_limit_key", None)
    return key_of(payload) if key_of is not None else None


class Pacer:
    """Paces one chunk's sends; ``deferred(channel)`` then lists what did not fit, with its ``not_before``."""

    def __init__(self, *, now: datetime):
        self.now = now
        self.started = clock.monotonic()
        time_limit = getattr(settings, "CELERY_TASK_TIME_LIMIT", None) or conf("DELIVERY_LEASE_SECONDS")
        # Leave the task at least half its time limit (and of the lease) to record outcomes.
        lease = conf("DELIVERY_LEASE_SECONDS")
        self.budget = min(conf("DELIVERY_RATE_LIMIT_BUDGET_SECONDS"), time_limit / 2, lease / 2)
        self.max_wait = conf("DELIVERY_RATE_LIMIT_MAX_WAIT_SECONDS")
        self._deferred: dict[str, list[tuple[tuple, datetime]]] = {}
        self._buckets = None

    @property
    def buckets(self):
        if self._buckets is None:
            self._buckets = buckets()
        return self._buckets

    def batches(self, channel: str, backend, items: list[tuple]) -> Iterator[list[tuple]]:
        """``items`` (each ending with its payload) in send order, cut into batches the buckets allow."""
        groups: dict[str | None, list[tuple]] = {}
        for item in items:
            groups.setdefault(_key(backend, item[-1]), []).append(item)
        for key, group in groups.items():
            limit = limit_for(key) if key is not None else None
            if limit is None:
                yield group
                continue
            yield from self._paced(channel, backend, key, limit, group)

    def _paced(self, channel, backend, key, limit, group):
        cost_of = getattr(backend, "rate_cost", None)
        # A message dearer than the whole bucket would never fit: it counts as a full bucket.
        costs = [min(cost_of(item[-1]) if cost_of else 1, limit.burst) for item in group]
        position = 0
        while position < len(group):
            try:
                grant = self.buckets.acquire(
                    key, limit, sum(costs[position:]), least=costs[position], now=clock.bucket_time()
                )
            except Exception:  # the limiter's store is down: sending blind could break the provider's limit
                logger.warning(
                    "rate limiter unavailable for %s: queueing %d again", key, len(group) - position, exc_info=True
                )
                elapsed = clock.monotonic() - self.started
                self._defer(channel, group[position:], costs[position:], limit, elapsed + _OUTAGE_RETRY_SECONDS)
                return
            end, used = position, 0
            while end < len(group) and used + costs[end] <= grant.granted:
                used += costs[end]
                end += 1
            if end > position:
                yield group[position:end]
                position = end
            if position == len(group):
                return
            elapsed = clock.monotonic() - self.started
            if grant.wait > self.max_wait or elapsed + grant.wait > self.budget:
                self._defer(channel, group[position:], costs[position:], limit, elapsed + grant.wait)
                return
            # Sleep until a whole bucket's worth (or the rest of the chunk) is there, not just the next
            # token: a batch per wake-up, not a round trip per message.
            target = min(sum(costs[position:]), limit.burst)
            full = grant.wait + max(target - costs[position], 0) / limit.rate
            clock.sleep(min(full, self.max_wait, self.budget - elapsed))

    def _defer(self, channel, rest, costs, limit, first_in: float) -> None:
        # Each row is due when its tokens should be there at this rate, so the rows come back spread out
        # instead of all at once (other workers share the bucket, so this is the earliest, not a promise).
        ahead = 0
        for item, cost in zip(rest, costs, strict=True):
            due = self.now + timedelta(seconds=first_in + ahead / limit.rate)
            self._deferred.setdefault(channel, []).append((item, due))
            ahead += cost

    def deferred(self, channel: str) -> list[tuple[tuple, datetime]]:
        return self._deferred.pop(channel, [])

    def slow_down(self, backend, batch: list[tuple], results: list) -> None:
        """Block the bucket of each provider that throttled this batch, for its Retry-After (once per provider)."""
        pauses: dict[str, float] = {}
        for item, result in zip(batch, results, strict=True):
            if getattr(result, "throttled", False):
                key = _key(backend, item[-1])
                if key is not None and limit_for(key) is not None:
                    pause = getattr(result, "retry_after", None) or conf("DELIVERY_THROTTLED_PAUSE_SECONDS")
                    pauses[key] = max(pauses.get(key, 0.0), float(pause))
        for key, seconds in pauses.items():
            self.buckets.block(key, seconds, now=clock.bucket_time())
