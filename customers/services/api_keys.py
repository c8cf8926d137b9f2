"""API keys: made once (the secret shown only then), checked on every request, revoked for good."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from customers.exceptions import CustomerError
from customers.models import ApiKey

KEY_PREFIX = "tdk_"
MAX_NAME_LENGTH = 100
MAX_KEY_LENGTH = 200
# Writing "last used" once a minute is precise enough for staff and spares a write per order.
LAST_USED_PRECISION = timedelta(minutes=1)
# Compared against when the prefix is unknown, so a guess costs the same work as a real key.
_UNKNOWN_KEY_HASH = hashlib.sha256(b"no such key").hexdigest()


def _secret_hash(full_key: str) -> str:
    # The secret is 256 random bits, not a password: a fast hash cannot be reversed or guessed.
    return hashlib.sha256(full_key.encode()).hexdigest()


def api_key_create(*, name: str, created_by=None) -> tuple[ApiKey, str]:
    """Make a key; returns (key row, full key). The full key is not stored and cannot be shown again."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise CustomerError(f"Give the key a name of at most {MAX_NAME_LENGTH} characters on one line.")
    prefix = KEY_PREFIX + secrets.token_hex(4)
    full_key = f"{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(name=name, prefix=prefix, secret_hash=_secret_hash(full_key), created_by=created_by)
    return api_key, full_key


def api_key_revoke(*, api_key: ApiKey, now: datetime | None = None) -> bool:
    """Revoke a key for good; idempotent (revoking a revoked key keeps its first date, returns False)."""
    now = now or timezone.now()
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        api_key.revoked_at = now
    return bool(revoked)


def api_key_authenticate(presented: str | None, *, now: datetime | None = None) -> ApiKey | None:
    """The active key ``presented`` is, or ``None`` for a missing, malformed, unknown or revoked one.

    One indexed read by prefix, then a constant-time comparison of the hashes. Records when the key
    was last used, at most once a minute per key (one conditional UPDATE).
    """
    presented = (presented or "").strip()
    prefix = presented[: len(KEY_PREFIX) + 8]
    well_formed = (
        presented.startswith(KEY_PREFIX)
        and len(presented) <= MAX_KEY_LENGTH
        and presented[len(prefix) : len(prefix) + 1] == "_"
    )
    api_key = ApiKey.objects.filter(prefix=prefix).first() if well_formed else None
    stored = api_key.secret_hash if api_key is not None else _UNKNOWN_KEY_HASH
    matches = hmac.compare_digest(_secret_hash(presented), stored)
    if api_key is None or not matches or api_key.revoked_at is not None:
        return None
    now = now or timezone.now()
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
