class LoyaltyError(Exception):
    """Base of every error a loyalty service raises on purpose; its message is fit to show a clerk."""


class InvalidCardNumber(LoyaltyError, ValueError):
    """A card number that is malformed or fails its check digit."""


class NotEnrolled(LoyaltyError):
    """The customer has no active account in the programme."""


class InsufficientPoints(LoyaltyError):
    """A debit larger than the balance."""


class InvalidAmount(LoyaltyError, ValueError):
    """Zero, negative, fractional or absurd points or money."""


class CouponError(LoyaltyError):
    """A code that is unknown, expired, used up, void or someone else's."""


class OfferLimitReached(CouponError):
    """The offer's total or per-customer limit is used up."""


class IdempotencyConflict(LoyaltyError):
    """An idempotency key reused for a different request."""
