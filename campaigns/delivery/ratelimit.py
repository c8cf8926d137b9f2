"""A token bucket per provider, shared by every worker: Redis when there is one, else the shared cache.

Each provider (an ESP, a Twilio sender, the FCM project) has one bucket that refills at ``rate`` tokens a
second up to ``burst``. A chunk asks for the tokens of a whole batch at once (``acquire(want)``, one
round trip) and gets what is there now plus the wait until more arrive; a provider's 429 drains the
bucket and blocks it until its Retry-After has passed (``block``), so every worker slows down, not only
the one that was told.

With Redis the bucket is one hash updated by a Lua script (atomic; the script reads Redis's own clock,
so workers on different machines agree on time). Without Redis (the embedded demo, whose cache is a
directory of files) the same arithmetic runs in Python under an exclusive ``flock`` next to the cache
files, so the processes of one machine still share one bucket. Nothing lives in process memory.
"""

from __future__ import annotations

import dataclasses
import fcntl
import math
import os
from pathlib import Path

from django.conf import settings

from campaigns.delivery.conf import conf

KEY_PREFIX = "tandem:delivery-rate:"

# Buckets untouched this long are forgotten (they refill to full anyway after burst / rate seconds).
_IDLE_TTL_SECONDS = 3600

# Epoch seconds as doubles are exact to about 1e-7 s: a token short by less than this counts as there.
_EPSILON = 0.001

# KEYS[1] bucket; ARGV: rate, burst, want, least, ttl seconds, now (optional: Redis's clock otherwise).
# Grants min(want, whole tokens) when at least ``least`` are there (and the bucket is not blocked), and
# returns {granted, seconds until ``least`` more are there}; numbers travel as strings (Lua -> Redis
# integers would truncate the fractions) written with 17 digits: Lua's tostring keeps 14, which rounds an
# epoch timestamp to 0.1 ms and lets the refill drift past the rate over thousands of calls.
_ACQUIRE_LUA = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local want, least, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = tonumber(ARGV[6])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'blocked')
local tokens, ts, blocked = tonumber(state[1]), tonumber(state[2]), tonumber(state[3]) or 0
if tokens == nil then tokens, ts = burst, now end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local granted = 0
if now >= blocked and tokens + 0.001 >= least then
  granted = math.min(want, math.floor(tokens + 0.001))
  tokens = tokens - granted
end
local wait = 0
if granted < want then
  wait = math.max(blocked - now, (least - tokens) / rate, 0)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts),
  'blocked', string.format('%.17g', blocked))
redis.call('EXPIRE', KEYS[1], ttl)
return {granted, tostring(wait)}
"""

# KEYS[1] bucket; ARGV: seconds, ttl seconds, now (optional). Empties the bucket and blocks it.
_BLOCK_LUA = """
local seconds, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local blocked = math.max(tonumber(redis.call('HGET', KEYS[1], 'blocked')) or 0, now + seconds)
redis.call('HSET', KEYS[1], 'tokens', '0', 'ts', string.format('%.17g', now),
  'blocked', string.format('%.17g', blocked))
redis.call('EXPIRE', KEYS[1], math.max(ttl, math.ceil(seconds)))
return string.format('%.17g', blocked)
"""


@dataclasses.dataclass(frozen=True)
class Limit:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    rate: float
    burst: int

    def __post_init__(self):
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError(f"A rate limit needs rate > 0 and burst >= 1, not {self.rate!r}/{self.burst!r}.")


@dataclasses.dataclass(frozen=True)
class Grant:
    granted: int
    wait: float  # seconds until the next ``least`` tokens (0 when everything asked for was granted)


def limit_for(key: str) -> Limit | None:
    """The configured limit of provider ``key``: the key itself, else its class (``twilio:long-code``).

    ``None`` when neither is configured (the provider is not limited).
    """
    limits = {**conf("DELIVERY_RATE_LIMITS_DEFAULTS"), **conf("DELIVERY_RATE_LIMITS")}
    for candidate in (key, provider_class(key)):
        value = limits.get(candidate)
        if value is not None:
            return Limit(rate=float(value["rate"]), burst=int(value.get("burst", math.ceil(value["rate"]))))
    return None


def provider_class(key: str) -> str:
    """``twilio:+18005550100`` -> ``twilio:toll-free``, ``email:<any ESP>`` -> ``email``; others are their own."""
    kind, _, sender = key.partition(":")
    if kind == "email":
        return "email"
    if kind != "twilio" or not sender:
        return key
    if sender.startswith("MG"):
        return "twilio:messaging-service"
    digits = sender.removeprefix("+")
    if not sender.startswith("+") and digits.isdigit() and len(digits) <= 8:
        return "twilio:short-code"
    if sender.startswith("+1") and digits[1:4] in {"800", "833", "844", "855", "866", "877", "888"}:
        return "twilio:toll-free"
    return "twilio:long-code"


class RedisBuckets:
    """Buckets in Redis, each call one atomic script run."""

    def __init__(self, client):
        self.client = client
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._block = client.register_script(_BLOCK_LUA)

    def acquire(self, key: str, limit: Limit, want: int, *, least: int = 1, now: float | None = None) -> Grant:
        least = max(1, min(least, limit.burst))
        args = [limit.rate, limit.burst, want, least, _IDLE_TTL_SECONDS] + ([] if now is None else [now])
        granted, wait = self._acquire(keys=[KEY_PREFIX + key], args=args)
        return Grant(granted=int(granted), wait=float(wait))

    def block(self, key: str, seconds: float, *, now: float | None = None) -> None:
        args = [seconds, _IDLE_TTL_SECONDS] + ([] if now is None else [now])
        self._block(keys=[KEY_PREFIX + key], args=args)


class CacheBuckets:
    """Buckets in Django's cache, each read-modify-write under an exclusive lock on a file.

    The lock file sits beside the file cache (or in the var directory), so every process of one machine
    takes the same lock: correct for the embedded demo, which runs on one machine. A cache that is not
    shared between processes (locmem) would make each process its own bucket: do not combine the two.
    """

    def __init__(self, cache=None, lock_path: Path | None = None):
        from django.core.cache import cache as default_cache

        self.cache = cache or default_cache
        self.lock_path = lock_path or _lock_path()
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)

    def _locked(self):
        return _FileLock(self.lock_path)

    def acquire(self, key: str, limit: Limit, want: int, *, least: int = 1, now: float | None = None) -> Grant:
        import time

        least = max(1, min(least, limit.burst))
        with self._locked():
            now = time.time() if now is None else now
            tokens, ts, blocked = self.cache.get(KEY_PREFIX + key) or (float(limit.burst), now, 0.0)
            if now > ts:
                tokens, ts = min(limit.burst, tokens + (now - ts) * limit.rate), now
            granted = 0
            if now >= blocked and tokens + _EPSILON >= least:
                granted = min(want, math.floor(tokens + _EPSILON))
                tokens -= granted  # a grant of a token short by < _EPSILON is repaid, not forgiven
            wait = max(blocked - now, (least - tokens) / limit.rate, 0.0) if granted < want else 0.0
            self.cache.set(KEY_PREFIX + key, (tokens, ts, blocked), timeout=_IDLE_TTL_SECONDS)
        return Grant(granted=granted, wait=wait)

    def block(self, key: str, seconds: float, *, now: float | None = None) -> None:
        import time

        with self._locked():
            now = time.time() if now is None else now
            state = self.cache.get(KEY_PREFIX + key)
            blocked = max(state[2] if state else 0.0, now + seconds)
            self.cache.set(KEY_PREFIX + key, (0.0, now, blocked), timeout=max(_IDLE_TTL_SECONDS, math.ceil(seconds)))


class _FileLock:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _lock_path() -> Path:
    location = settings.CACHES["default"].get("LOCATION", "")
    if "filebased" in settings.CACHES["default"]["BACKEND"] and location:
        return Path(location) / "delivery-rate.lock"
    return Path(getattr(settings, "VAR_DIR", "var")) / "delivery-rate.lock"


_redis_clients: dict[str, object] = {}


def buckets() -> RedisBuckets | CacheBuckets:
    """This deployment's buckets: Redis at ``DELIVERY_RATE_LIMIT_REDIS_URL`` (or ``REDIS_URL``), else the cache.

    The Redis client (a connection pool, not state) is made once per process.
    """
    url = conf("DELIVERY_RATE_LIMIT_REDIS_URL") or settings.REDIS_URL
    if not url:
        return CacheBuckets()
    if url not in _redis_clients:
        import redis

        _redis_clients[url] = RedisBuckets(redis.Redis.from_url(url))
    return _redis_clients[url]
