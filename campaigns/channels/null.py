"""A counting null channel for benchmarks: real payloads are built, nothing leaves, a shared counter counts them.

Chosen per channel by ``TANDEM_NULL_CHANNELS`` (``email,sms,push``). The count lives in Redis (one
``INCRBY`` per batch) or, without Redis, in the shared cache under a file lock, so a benchmark reads the
total across every worker process with ``null_sent_count``. No rate limit applies: the point is to
measure our own cost per message.
"""

from __future__ import annotations

from django.conf import settings

from campaigns.channels.base import SendResult

COUNTER_PREFIX = "tandem:null-sent:"


def null_channels() -> set[str]:
    return set(getattr(settings, "TANDEM_NULL_CHANNELS", ()) or ())


class NullChannel:
    """Wraps a real channel backend: its payloads, its recipient addresses; ``send`` only counts."""

    def __init__(self, real):
        self.real = real
        self.channel = real.channel

    def recipient_address(self, customer):
        return self.real.recipient_address(customer)

    def build_payload(self, *, rendered, to, metadata: dict, links: dict):
        return self.real.build_payload(rendered=rendered, to=to, metadata=metadata, links=links)

    def send(self, payload) -> SendResult:
        [result] = self.send_many([payload])
        return result

    def send_many(self, payloads: list) -> list[SendResult]:
        total = _add(self.channel, len(payloads))
        first = total - len(payloads)
        return [SendResult(provider_id=f"null:{self.channel}:{first + index + 1}") for index in range(len(payloads))]


_clients: dict[str, object] = {}  # a connection pool per process, not state


def _redis():
    from campaigns.delivery.conf import conf

    url = conf("DELIVERY_RATE_LIMIT_REDIS_URL") or settings.REDIS_URL
    if not url:
        return None
    if url not in _clients:
        import redis

        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


def _add(channel: str, count: int) -> int:
    """Add ``count`` to ``channel``'s counter atomically; the new total."""
    client = _redis()
    if client is not None:
        return int(client.incrby(COUNTER_PREFIX + channel, count))
    from django.core.cache import cache

    from campaigns.delivery.ratelimit import _FileLock, _lock_path

    with _FileLock(_lock_path()):
        total = (cache.get(COUNTER_PREFIX + channel) or 0) + count
        cache.set(COUNTER_PREFIX + channel, total, timeout=None)
    return total


def null_sent_count(channel: str) -> int:
    """How many messages the null ``channel`` has counted, across every process."""
    client = _redis()
    if client is not None:
        return int(client.get(COUNTER_PREFIX + channel) or 0)
    from django.core.cache import cache

    return int(cache.get(COUNTER_PREFIX + channel) or 0)


def null_counters_reset() -> None:
    client = _redis()
    if client is not None:
        client.delete(*(COUNTER_PREFIX + channel for channel in ("email", "sms", "push")))
        return
    from django.core.cache import cache

    cache.delete_many([COUNTER_PREFIX + channel for channel in ("email", "sms", "push")])
