"""Normalisation and validation of contact addresses.

Every address enters the database through these functions, so one customer has one spelling of an
address and deduplication compares like with like. They raise ``InvalidContact`` with a message fit
to show a clerk or a marketer; they never return a half-cleaned value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import idna
import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from customers.exceptions import InvalidContact

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
    domain = domain.rstrip(".")
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


def normalize_phone(raw: str, *, region: str | None = None) -> str:
    """Return a phone number in E.164 (``+14155550123``) or raise ``InvalidContact``.

    A number without a leading + is read in ``region`` (default: ``TANDEM["DEFAULT_PHONE_REGION"]``).
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
    region = region or settings.TANDEM["DEFAULT_PHONE_REGION"]
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidContact("That is not a phone number we can read; include the country code, e.g. +1.") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact("That phone number is not valid for its country.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
