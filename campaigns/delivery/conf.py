"""Tunables of the send pipeline, read from settings (``DELIVERY_*``) with these defaults."""

from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    # Deliveries per chunk task (500-2,000: big enough to amortise a task, small enough to retry).
    "DELIVERY_CHUNK_SIZE": 1000,
    # A claimed row is the worker's until then; above CELERY_TASK_TIME_LIMIT, below the visibility timeout.
    "DELIVERY_LEASE_SECONDS": 900,
    # A queued row whose task was published is left alone this long before the sweeper publishes again.
    "DELIVERY_REDRIVE_AFTER_SECONDS": 60,
    # Transient provider errors: attempts in all, and the first backoff (doubled each attempt).
    "DELIVERY_MAX_ATTEMPTS": 5,
    "DELIVERY_RETRY_BASE_SECONDS": 60,
    # Rows re-driven per sweep at most (the rest on the next sweep).
    "DELIVERY_SWEEP_LIMIT": 100_000,
    # Channels whose messages go to the outbox table instead of a provider.
    "DELIVERY_OUTBOX_CHANNELS": ("email", "sms", "push"),
}


def conf(name: str):
    return getattr(settings, name, DEFAULTS[name])
