"""What a sending worker loads once, as it starts, so that no chunk pays for it.

Celery calls ``delivery_preload`` in the worker's main process before it forks its pool (see
``config/celery.py``): each child then starts with the channels, the ESP's backend and its HTTP client,
the provider clients, the rate limit's Redis client and the phone metadata already imported, shared
with its siblings instead of loaded again by each one's first chunk (a quarter of a second here).
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def delivery_preload() -> list[str]:
    """Import what sending uses; returns what could not be loaded (each logged; never raises)."""
    import importlib

    from django.conf import settings
    from django.utils.module_loading import import_string

    failed = []
    steps = [
        ("the send pipeline", lambda: importlib.import_module("campaigns.delivery.sending")),
        ("the channels", lambda: _channels()),
        ("the mail backend", lambda: import_string(settings.EMAIL_BACKEND)),
        ("the rate limit's store", lambda: _rate_limit_store()),
        ("phone metadata", lambda: _phone_metadata(settings.TANDEM["DEFAULT_PHONE_REGION"])),
        # A message's links are reversed URLs: the first reverse imports every view (170 ms here).
        ("the URL map", lambda: importlib.import_module("campaigns.links").preview_links()),
        ("translations", lambda: _translations()),
    ]
    if getattr(settings, "TWILIO_ACCOUNT_SID", ""):
        steps.append(("twilio", lambda: importlib.import_module("twilio.rest")))
    for name, step in steps:
        try:
            step()
        except Exception:  # a worker that cannot preload still sends: the first chunk loads it instead
            logger.exception("could not preload %s", name)
            failed.append(name)
    return failed


def _channels() -> None:
    from campaigns.channels.registry import channel_get

    for name in ("email", "sms", "push"):
        channel_get(name)


def _rate_limit_store() -> None:
    from campaigns.delivery.ratelimit import buckets

    buckets()


def _phone_metadata(region: str) -> None:
    import phonenumbers

    from campaigns.delivery.quiet_hours import _phone_place, country_zones

    example = phonenumbers.example_number(region or "US")
    if example is not None:
        # Loads the region's metadata and time-zone prefixes, which phonenumbers reads on first use.
        _phone_place(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    country_zones(region or "US")


def _translations() -> None:
    from django.utils import translation

    translation.gettext("Unsubscribe")  # the active language's catalogues, loaded on first use
