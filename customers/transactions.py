"""Transactions that survive lock conflicts: a deadlock or a serialization failure is retried.

PostgreSQL aborts one of two transactions that wait for each other (``40P01``) and may abort a
transaction whose snapshot went stale (``40001``). Both are transient: running the whole transaction
again succeeds, so a service retries them a bounded number of times instead of answering with a 500.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connection, transaction

logger = logging.getLogger(__name__)

RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
DEFAULT_ATTEMPTS = 5

F = TypeVar("F", bound=Callable)


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a deadlock or serialization failure reported by the database."""
    cause = exc.__cause__ or exc.__context__
    return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES or getattr(exc, "sqlstate", None) in (
        RETRYABLE_SQLSTATES
    )


def atomic_retry(func: F | None = None, *, attempts: int = DEFAULT_ATTEMPTS) -> F:
    """Run the decorated service in its own transaction; retry it on a lock conflict.

    Only the outermost transaction can be run again: called inside a caller's transaction, the
    service runs once in a savepoint and a conflict propagates to the caller, whose own
    ``atomic_retry`` (if any) runs everything again. The service must therefore read what it decides
    on inside the transaction (under its locks), never from objects changed by a failed attempt.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if connection.in_atomic_block:
                with transaction.atomic():
                    return fn(*args, **kwargs)
            for attempt in range(1, attempts + 1):
                try:
                    with transaction.atomic():
                        return fn(*args, **kwargs)
                except OperationalError as exc:
                    if attempt == attempts or not is_lock_conflict(exc):
                        raise
                    logger.info("%s: lock conflict (attempt %s of %s), retrying", fn.__qualname__, attempt, attempts)
                    # A short random pause lets the other transaction finish before we take its locks.
                    time.sleep(random.uniform(0, 0.02 * attempt))  # noqa: S311 (jitter, not security)
            raise AssertionError("unreachable")

        return wrapper

    return decorate(func) if func is not None else decorate
