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
    # Where the ESP substitutes per-recipient values (SendGrid, Mailgun), a chunk's emails of one variant
    # leave in one request (campaigns/channels/email_batch.py); off, every email is its own request.
    "DELIVERY_EMAIL_BATCH": True,
    # Channels whose messages go to the outbox table instead of a provider.
    "DELIVERY_OUTBOX_CHANNELS": ("email", "sms", "push"),
    # Transient errors wait a random time between 0 and min(cap, base * 2 ** (attempt - 1)) ("full jitter"),
    # or a provider's Retry-After when that is longer.
    "DELIVERY_RETRY_MAX_SECONDS": 3600,
    # Provider rate limits shared by every worker (campaigns/delivery/ratelimit.py): a provider key, or its
    # class, -> {"rate": tokens per second, "burst": tokens saved up}. A token is one email, one SMS
    # segment, one push message (one device). DELIVERY_RATE_LIMITS overrides these per key; a key in
    # neither is not limited (the outbox, and mail backends that stay in the process, never are).
    "DELIVERY_RATE_LIMITS": {},
    "DELIVERY_RATE_LIMITS_DEFAULTS": {
        # Amazon SES: new production accounts start at 14/s (sandbox 1/s); the quota is per account.
        "email:amazon-ses": {"rate": 10, "burst": 10},
        # Postmark, SendGrid, Mailgun publish no fixed per-second send limit (plan and reputation decide);
        # these stay well inside what they accept from one sender and are meant to be raised.
        "email:postmark": {"rate": 50, "burst": 50},
        "email:sendgrid": {"rate": 100, "burst": 100},
        "email:mailgun": {"rate": 50, "burst": 50},
        # Resend documents 2 requests a second by default.
        "email:resend": {"rate": 2, "burst": 2},
        # Any other ESP anymail carries, and SMTP ("email:smtp").
        "email": {"rate": 10, "burst": 10},
        # Twilio counts message segments per second per sender: a long code 1, toll-free 3, a short code
        # 100; a Messaging Service is the sum of its pool's numbers (1 here: one long code, raise it).
        "twilio:long-code": {"rate": 1, "burst": 1},
        "twilio:toll-free": {"rate": 3, "burst": 3},
        "twilio:short-code": {"rate": 100, "burst": 100},
        "twilio:messaging-service": {"rate": 1, "burst": 1},
        # FCM HTTP v1: 600,000 messages a minute per project (10,000/s); half of it.
        "fcm": {"rate": 5000, "burst": 5000},
        # Web push (VAPID) to browsers' push services (FCM's web endpoint, Mozilla, Apple, Microsoft), one
        # request per browser. None publishes a per-sender rate and each answers 429 when it minds; this
        # keeps one sender's bursts modest across all of them.
        "webpush": {"rate": 1000, "burst": 1000},
    },
    # The buckets' Redis (default REDIS_URL); without one, the shared cache under a file lock.
    "DELIVERY_RATE_LIMIT_REDIS_URL": "",
    # A chunk waits for tokens in the task at most this long in one go, and this long in all; beyond
    # either, the rest of the chunk is queued again with not_before (never dropped). Kept well inside
    # CELERY_TASK_TIME_LIMIT and the lease, whatever is configured.
    "DELIVERY_RATE_LIMIT_MAX_WAIT_SECONDS": 10,
    "DELIVERY_RATE_LIMIT_BUDGET_SECONDS": 120,
    # A 429 without Retry-After blocks its provider's bucket this long.
    "DELIVERY_THROTTLED_PAUSE_SECONDS": 5,
}


def conf(name: str):
    return getattr(settings, name, DEFAULTS[name])
