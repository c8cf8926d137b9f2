"""Normalisation and validation of what people type: contact addresses, names and amounts.

Every address, person's name and money amount enters the database through these functions, whichever
door it comes in by (till, admin, CSV import, services), so one customer has one spelling of an address
and deduplication compares like with like. They raise ``InvalidContact`` / ``InvalidText`` /
``InvalidNumber`` with a message fit to show a clerk or a marketer; they never return a half-cleaned
value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from decimal import Decimal, InvalidOperation

import idna
import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from customers.exceptions import InvalidContact, InvalidNumber, InvalidText

MAX_EMAIL_LENGTH = 320
MAX_LOCAL_PART_LENGTH = 64
MAX_DOMAIN_LENGTH = 253
MAX_PHONE_INPUT_LENGTH = 40

_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_django_email_validator = EmailValidator()

# Domains people mistype at a till, and what they meant. Suggestions only: a hint, never a block.
COMMON_DOMAIN_TYPOS = {
    "gmial.com": "gmail.com",
    "gmai.com": "gmail.com",
    "gamil.com": "gmail.com",
    "gmaill.com": "gmail.com",
    "gnail.com": "gmail.com",
    "gmail.co": "gmail.com",
    "gmail.cm": "gmail.com",
    "gmail.con": "gmail.com",
    "gmail.om": "gmail.com",
    "hotmial.com": "hotmail.com",
    "hotmal.com": "hotmail.com",
    "hotmai.com": "hotmail.com",
    "hotmail.co": "hotmail.com",
    "hotmail.con": "hotmail.com",
    "homail.com": "hotmail.com",
    "yaho.com": "yahoo.com",
    "yahooo.com": "yahoo.com",
    "yahoo.co": "yahoo.com",
    "yahoo.con": "yahoo.com",
    "outlok.com": "outlook.com",
    "outloo.com": "outlook.com",
    "outlook.co": "outlook.com",
    "iclod.com": "icloud.com",
    "icloud.co": "icloud.com",
    "aol.co": "aol.com",
}


def _refuse_invisible_characters(value: str, what: str) -> None:
    for char in value:
        category = unicodedata.category(char)
        # Cc: controls (NUL included), Cf: format (bidi overrides, zero-width), Z*: separators.
        if category in {"Cc", "Cf", "Zl", "Zp", "Zs"}:
            raise InvalidContact(f"The {what} contains a space or an invisible character.")


def normalize_email(raw: str) -> str:
    """Return the canonical form of an email address or raise ``InvalidContact``.

    Surrounding spaces are trimmed and the domain lower-cased; an internationalised domain is stored
    in its ASCII (punycode) form so both spellings are one address. The local part keeps its case
    (mailboxes may be case-sensitive) but dedupe compares it case-insensitively.
    """
    if not isinstance(raw, str):
        raise InvalidContact("Enter an email address.")
    value = raw.strip()
    if not value:
        raise InvalidContact("Enter an email address.")
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidContact(f"An email address cannot be longer than {MAX_EMAIL_LENGTH} characters.")
    _refuse_invisible_characters(value, "email address")
    if value.count("@") != 1:
        raise InvalidContact("An email address needs exactly one @, as in name@example.com.")
    local, domain = value.split("@")
    if not local or not domain:
        raise InvalidContact("An email address needs a name before the @ and a domain after it.")
    if len(local) > MAX_LOCAL_PART_LENGTH:
        raise InvalidContact(f"The part before the @ cannot be longer than {MAX_LOCAL_PART_LENGTH} characters.")
    if not local.isascii():
        raise InvalidContact("The part before the @ must use plain letters, digits and . _ - +.")
    if not _LOCAL_PART.match(local):
        raise InvalidContact("The part before the @ has a character or dot that email does not allow.")
    domain = _normalize_domain(domain)
    email = f"{local}@{domain}"
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidContact(f"An email address cannot be longer than {MAX_EMAIL_LENGTH} characters.")
    try:
        _django_email_validator(email)
    except ValidationError as exc:
        raise InvalidContact("Enter a valid email address.") from exc
    return email


def _normalize_domain(domain: str) -> str:
    if domain.endswith("."):
        # "ann@example.com." is a typo more often than a fully-qualified name; quietly dropping the dot
        # would file the address under another person's profile without anyone having checked it.
        raise InvalidContact("The email address ends with a dot; remove it (name@example.com).")
    if domain.startswith("[") or re.fullmatch(r"[0-9.]+", domain):
        raise InvalidContact("Use a domain name after the @, not an IP address.")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidContact("The domain after the @ is not a valid domain name.") from exc
    if len(ascii_domain) > MAX_DOMAIN_LENGTH:
        raise InvalidContact("The domain after the @ is too long.")
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise InvalidContact("The domain after the @ needs a dot, as in example.com.")
    if not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise InvalidContact("The domain after the @ is not a valid domain name.")
    if not _TLD.match(labels[-1]):
        raise InvalidContact("The domain after the @ does not end in a valid top-level domain.")
    return ascii_domain


def email_dedupe_key(email: str) -> str:
    """The key under which two spellings of one mailbox are the same customer."""
    return email.lower()


def suggest_email_correction(email: str) -> str | None:
    """A likely intended address when the domain is a common misspelling, else ``None``."""
    local, _, domain = email.rpartition("@")
    suggestion = COMMON_DOMAIN_TYPOS.get(domain.lower())
    return f"{local}@{suggestion}" if local and suggestion else None


# Numbers that can receive a text message. In the US and Canada one numbering range holds both
# landlines and mobiles (FIXED_LINE_OR_MOBILE), so such a number is accepted as the person says so.
_SMS_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
# Kinds of number a person may still give as a contact (for a call, a look-up at the till) but that
# never get SMS consent: they cannot receive texts, or a text to them is not a text to that person.
_NO_SMS_REASONS = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "a landline",
    phonenumbers.PhoneNumberType.TOLL_FREE: "a toll-free number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.VOIP: "an internet (VoIP) number",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "a personal forwarding number",
    phonenumbers.PhoneNumberType.PAGER: "a pager",
    phonenumbers.PhoneNumberType.UAN: "a company switchboard number",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail access number",
}


def phone_region(country: str | None) -> str | None:
    """The phone region for an ISO country code (a store's country), or ``None`` when unknown."""
    region = (country or "").strip().upper()
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def normalize_phone(raw: str, *, region: str | None = None) -> str:
    """Return a phone number in E.164 (``+14155550123``) or raise ``InvalidContact``.

    A number without a leading + is read in ``region`` (the store's or the import's country; when
    missing or unknown, ``TANDEM["DEFAULT_PHONE_REGION"]``). Refused: an extension (it would be
    dropped, and a text cannot reach one), letters as in 1-800-FLOWERS (read as digits they are easy
    to get wrong, and no person's own phone is spelt so), and premium-rate numbers (never a person's
    own line; a call or text to one costs money). Other valid kinds are accepted as contacts; whether
    one may get SMS consent is ``phone_sms_refusal``'s answer.
    """
    if not isinstance(raw, str):
        raise InvalidContact("Enter a phone number.")
    value = raw.strip()
    if not value:
        raise InvalidContact("Enter a phone number.")
    if len(value) > MAX_PHONE_INPUT_LENGTH:
        raise InvalidContact("That is too long to be a phone number.")
    if any(unicodedata.category(char) in {"Cc", "Cf"} for char in value):
        raise InvalidContact("The phone number contains an invisible character.")
    region = phone_region(region) or settings.TANDEM["DEFAULT_PHONE_REGION"]
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidContact("That is not a phone number we can read; include the country code, e.g. +1.") from exc
    if number.extension:
        raise InvalidContact("Enter the phone number without an extension; an extension cannot be stored or texted.")
    if any(char.isalpha() for char in value):
        raise InvalidContact("Type the phone number in digits; letters (as in 1-800-FLOWERS) are not accepted.")
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact("That phone number is not valid for its country.")
    if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.PREMIUM_RATE:
        raise InvalidContact("That is a premium-rate number; give the customer's own phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_sms_refusal(e164: str) -> str | None:
    """Why SMS consent cannot be recorded for a normalised number, or ``None`` when it can receive texts."""
    try:
        number_type = phonenumbers.number_type(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        number_type = phonenumbers.PhoneNumberType.UNKNOWN
    if number_type in _SMS_TYPES:
        return None
    kind = _NO_SMS_REASONS.get(number_type)
    if kind is None:
        return "SMS consent needs a mobile number; this number is not known to receive texts."
    return f"SMS consent needs a mobile number; this is {kind}, which cannot receive our texts."


def phone_time_zone(e164: str) -> str | None:
    """The time zone of a phone's country or area, when it has exactly one, else the first."""
    from phonenumbers import timezone as phone_timezones

    try:
        zones = phone_timezones.time_zones_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
    zones = [zone for zone in zones if zone != "Etc/Unknown"]
    return zones[0] if zones else None


def address_hmac(channel: str, address: str) -> str:
    """A keyed hash of a normalised address; the suppression list stores only this."""
    canonical = address.lower() if channel == "email" else address
    message = f"{channel}:{canonical}".encode()
    return hmac.new(settings.SUPPRESSION_HMAC_KEY.encode(), message, hashlib.sha256).hexdigest()


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    name, _, tld = domain.rpartition(".")
    return f"{local[:1]}***@{name[:1]}***.{tld}"


def mask_phone(e164: str) -> str:
    return f"{e164[:2]}••• ••• {e164[-2:]}" if len(e164) > 4 else "•••"


# Names: controls (CR, LF, tab, NUL…), format characters (bidirectional overrides and isolates,
# zero-width spaces, the BOM, soft hyphens), line/paragraph separators, surrogates and private use.
_REFUSED_IN_NAMES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co"}
# Zero-width (non-)joiners are part of correct spelling in Persian, Arabic and Indic names.
_JOINERS = {"\u200c", "\u200d"}


def normalize_name(raw: str | None, *, label: str = "name", max_length: int = 100) -> str:
    """A person's name as stored: trimmed, NFC-composed, or ``InvalidText``.

    Refused rather than stripped: a name with a line break or a bidirectional override was pasted
    from somewhere or crafted to mislead, and silently dropping characters stores a name nobody typed
    or checked (and could join two different spellings). The person retypes it instead; an import
    row gets a row error. Joiners are kept, except at either end where they do nothing.
    """
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidText(f"The {label} must be text.")
    value = unicodedata.normalize("NFC", raw.strip())
    for char in value:
        if char in _JOINERS:
            continue
        if unicodedata.category(char) in _REFUSED_IN_NAMES:
            raise InvalidText(f"The {label} contains a line break or an invisible character; type it again.")
    if value[:1] in _JOINERS or value[-1:] in _JOINERS:
        raise InvalidText(f"The {label} contains a line break or an invisible character; type it again.")
    if len(value) > max_length:
        raise InvalidText(f"The {label} cannot be longer than {max_length} characters.")
    return value


_PLAIN_AMOUNT = re.compile(r"^-?(?:[0-9]{1,12}(?:\.[0-9]*)?|\.[0-9]+)$")


def plain_decimal_text(text: str) -> bool:
    """Whether ``text`` is a number in plain decimal notation (digits, an optional dot, an optional -)."""
    return bool(_PLAIN_AMOUNT.match(text))


def parse_amount(value, *, label: str = "amount") -> Decimal:
    """A money amount typed by a person: plain digits, an optional dot and at most two decimals.

    ``1e3``, ``NaN``, ``Infinity``, ``1,000`` and ``1 000`` are refused with ``InvalidNumber`` rather
    than read as something the clerk did not see. A ``Decimal`` or ``int`` from code is checked for
    being finite with at most two decimals. The sign is left to the caller (who says what it allows).
    """
    if isinstance(value, (bool, float)):
        raise InvalidNumber(f"The {label} must be given as text or a Decimal, not a {type(value).__name__}.")
    if isinstance(value, int):
        value = Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidNumber(f"The {label} must be a number.")
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidNumber(f"Enter the {label}.")
        if not _PLAIN_AMOUNT.match(text):
            raise InvalidNumber(
                f"The {label} must be a number in plain digits with a dot for cents, e.g. 1000 or 12.50 "
                "(no exponent, spaces or thousands separators)."
            )
        amount = Decimal(text)
    else:
        raise InvalidNumber(f"The {label} must be a number.")
    try:
        if amount != amount.quantize(Decimal("0.01")):
            raise InvalidNumber(f"The {label} has more than two decimals.")
    except InvalidOperation as exc:
        raise InvalidNumber(f"The {label} is implausibly large.") from exc
    return amount
