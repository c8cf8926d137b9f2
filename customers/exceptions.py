class CustomerError(Exception):
    """Base of every error a customers service raises on purpose; its message is fit to show."""


class InvalidContact(CustomerError, ValueError):
    """An email address or phone number that cannot be normalised."""


class InvalidText(CustomerError, ValueError):
    """Free text, such as a person's name, with characters that cannot be stored (line breaks, controls)."""


class InvalidNumber(CustomerError, ValueError):
    """A number typed by a person in a form we do not read (exponent, NaN, separators, too many decimals)."""


class ConsentError(CustomerError):
    """A consent change that the rules refuse (no evidence, unknown disclosure, …)."""


class InvalidToken(CustomerError):
    """A signed link that is tampered, expired, truncated or meant for another purpose."""


class ExpiredToken(InvalidToken):
    """A genuine link past its validity (an edit link); its page may say so and offer the way forward."""


class PurchaseConflict(CustomerError):
    """A repeat of an order or receipt number that disagrees with the purchase first recorded under it."""


class MergeError(CustomerError):
    """Two profiles that cannot be merged."""


class ImportFileError(CustomerError):
    """A CSV file that cannot be read at all (wrong header, not text)."""
