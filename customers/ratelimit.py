"""A fixed-window rate limit kept in the shared cache (Redis in production), never in process memory."""

from __future__ import annotations

import time

from django.core.cache import cache


def rate_limit_hit(*, scope: str, key: str, limit: int, window_seconds: int = 60) -> bool:
    """Count one hit; return True when the caller is over ``limit`` hits in the current window."""
    window = int(time.time() // window_seconds)
    cache_key = f"ratelimit:{scope}:{key}:{window}"
    if cache.add(cache_key, 1, timeout=window_seconds + 5):
        return limit < 1
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window_seconds + 5)
        count = 1
    return count > limit


def client_ip(request) -> str:
    """The client address as the web server saw it (REMOTE_ADDR; proxies must set it correctly)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"
