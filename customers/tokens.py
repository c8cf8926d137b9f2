"""Signed, single-purpose links for customers who have no login.

A token names its purpose in the signing salt, so a token made for one purpose fails the signature
check for any other: there is nothing to learn from a swapped, tampered or truncated token, and the
views answer every bad token with the same generic page.
"""

from __future__ import annotations

from django.core import signing

from customers.exceptions import ExpiredToken, InvalidToken

_SALT_PREFIX = "tandem.token."


def token_make(*, purpose: str, payload: dict) -> str:
    return signing.dumps(payload, salt=_SALT_PREFIX + purpose, compress=False)


def token_read(*, purpose: str, token: str, max_age_seconds: int | None = None) -> dict:
    """Return the payload, or raise ``InvalidToken`` for any token not made for ``purpose``.

    A token of this purpose older than ``max_age_seconds`` raises ``ExpiredToken`` (a subclass).
    """
    if not isinstance(token, str) or not token or len(token) > 1000:
        raise InvalidToken("This link is not valid.")
    try:
        payload = signing.loads(token, salt=_SALT_PREFIX + purpose, max_age=max_age_seconds)
    except signing.SignatureExpired as exc:
        raise ExpiredToken("This link has expired.") from exc
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("This link is not valid.") from exc
    if not isinstance(payload, dict):
        raise InvalidToken("This link is not valid.")
    return payload
