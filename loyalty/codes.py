"""Coupon codes: drawn with ``secrets`` from an alphabet without look-alikes (0/O, 1/I/L)."""

from __future__ import annotations

import secrets

from loyalty.exceptions import CouponError

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
UNIQUE_CODE_LENGTH = 10  # 31**10 ≈ 8e14 codes: guessing one of a million issued takes ~8e8 tries
MAX_CODE_LENGTH = 32


def coupon_code_generate(*, length: int = UNIQUE_CODE_LENGTH, prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def coupon_code_normalize(raw: str) -> str:
    """Upper-case, without spaces and dashes; raises ``CouponError`` on anything that cannot be a code."""
    code = "".join(ch for ch in (raw or "") if ch not in " -").upper()
    if not code:
        raise CouponError("Enter a coupon code.")
    if len(code) > MAX_CODE_LENGTH or not code.isascii() or not code.isalnum():
        raise CouponError("Unknown code. Check it and try again.")
    return code
