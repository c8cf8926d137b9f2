"""Tandem settings, read from the environment with safe local defaults.

Production fails fast (``ImproperlyConfigured``) when a value it needs is missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TANDEM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
_DEV_SECRET_KEY = "dev-only-insecure-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"  # noqa: S105
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _DEV_SECRET_KEY

# Keyed separately from SECRET_KEY so rotating the session key never forgets who asked not to be
# contacted again.
SUPPRESSION_HMAC_KEY = os.environ.get("SUPPRESSION_HMAC_KEY", "")
if not SUPPRESSION_HMAC_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SUPPRESSION_HMAC_KEY must be set when DEBUG is off.")
    SUPPRESSION_HMAC_KEY = "dev-only-suppression-key"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The externally visible base URL, used in links we send and to verify signed provider webhooks
# behind a proxy.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Every marketing mail carries it in List-Unsubscribe, which RFC 8058 wants https; mailbox providers
# ignore a plain-http one-click link.
if not DEBUG and not (PUBLIC_BASE_URL.startswith("https://") and len(PUBLIC_BASE_URL) > len("https://")):
    raise ImproperlyConfigured("PUBLIC_BASE_URL must be an https:// address when DEBUG is off.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",
    "django_celery_beat",
    "anymail",
    "push_notifications",
    "customers",
    "loyalty",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "customers.middleware.ClerkAdminGuardMiddleware",
]

ROOT_URLCONF = "config.urls"
# Form widgets may be overridden from templates/ like any other template.
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "tandem.sqlite3",
            # A web process, a worker and beat write at once: take the write lock at BEGIN and wait
            # for it, instead of failing with "database is locked".
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get(
        "TEST_DATABASE_NAME", f"test_{DATABASES['default']['NAME']}"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker ---------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Parallel test processes each get their own cache, since every test starts by clearing it.
_TEST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "") if os.environ.get("TANDEM_TESTING") else ""


def _cache_redis_url(url: str) -> str:
    if not _TEST_WORKER:
        return url
    base, _, db = url.rpartition("/")
    offset = int(_TEST_WORKER.removeprefix("gw") or 0) + 1
    return f"{base}/{((int(db) if db.isdigit() else 0) + offset) % 16}" if base.startswith("redis") else url


# The broker may live elsewhere (e.g. RabbitMQ: amqp://…); caches and rate limits stay on REDIS_URL.
_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("BROKER_URL") or REDIS_URL

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_redis_url(REDIS_URL)}
    }
else:
    # Shared by every process of the embedded demo (rate limits must not live in one process).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache" / _TEST_WORKER),
        }
    }
if _BROKER_URL:
    CELERY_BROKER_URL = _BROKER_URL
    # Redis hands an unacknowledged task to another worker after this; above DELIVERY_LEASE_SECONDS.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "config.broker.AtomicFilesystemTransport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.5,
    }

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "consent-confirmations-resend-stuck": {
        "task": "customers.consent_confirmations_sweep",
        "schedule": 60.0,
    },
    "loyalty-points-expire": {
        "task": "loyalty.points_expire_due",
        "schedule": 3600.0,
    },
    "loyalty-tiers-review": {
        "task": "loyalty.tiers_review",
        "schedule": 6 * 3600.0,
    },
    "customer-imports-redrive": {
        "task": "customers.customer_imports_sweep",
        "schedule": 60.0,
    },
    "campaigns-dispatch-due": {
        "task": "campaigns.campaigns_dispatch_due",
        "schedule": 60.0,
    },
    "deliveries-sweep": {
        "task": "campaigns.deliveries_sweep",
        "schedule": 60.0,
    },
    "frequency-counters-prune": {
        "task": "campaigns.frequency_counters_prune",
        "schedule": 24 * 3600.0,
    },
    "journeys-tick": {
        "task": "campaigns.journeys_tick",
        "schedule": 60.0,
    },
    "sms-costs-settle": {
        "task": "campaigns.sms_costs_settle",
        "schedule": 600.0,
    },
    # The goal dashboard's figures lag the base tables by at most this (campaigns.results.rollups).
    "results-rollups-refresh": {
        "task": "campaigns.results_rollups_refresh",
        "schedule": 300.0,
    },
}
# Sending has its own queue, so a large campaign never delays the minutely dispatch and sweep.
CELERY_TASK_ROUTES = {
    "campaigns.campaigns_dispatch_due": {"queue": "dispatch"},
    "campaigns.deliveries_sweep": {"queue": "dispatch"},
    "campaigns.frequency_counters_prune": {"queue": "dispatch"},
    "campaigns.journeys_tick": {"queue": "dispatch"},
    # Up to a few hundred requests to Twilio: with the senders, never ahead of the minutely dispatch.
    "campaigns.sms_costs_settle": {"queue": "sending"},
    "campaigns.delivery_chunk_send": {"queue": "sending"},
}

# --- Auth ------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "till:login"

# --- I18N ------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
# The zone staff read and type times in (the admin, schedules). Stored times are always UTC.
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Email, SMS ------------------------------------------------------------------------------
# Any ESP through anymail: set EMAIL_BACKEND to e.g. "anymail.backends.postmark.EmailBackend" and the
# ANYMAIL_* credentials below. The default prints mail to the console for the demo.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_") and key != "ANYMAIL_WEBHOOK_SECRET"
}
if os.environ.get("ANYMAIL_WEBHOOK_SECRET"):
    ANYMAIL["WEBHOOK_SECRET"] = env_list("ANYMAIL_WEBHOOK_SECRET")
# Marketing and transactional mail leave from different addresses (Gmail/Yahoo bulk sender rules).
MARKETING_FROM_EMAIL = os.environ.get("MARKETING_FROM_EMAIL", "Tandem Stores <news@tandem.example>")
TRANSACTIONAL_FROM_EMAIL = os.environ.get("TRANSACTIONAL_FROM_EMAIL", "Tandem Stores <no-reply@tandem.example>")
DEFAULT_FROM_EMAIL = TRANSACTIONAL_FROM_EMAIL
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID", "")
# The sender when there is no Messaging Service (the service wins when both are set).
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
# Texts ask Twilio for status callbacks at PUBLIC_BASE_URL/webhooks/twilio/status/<delivery id>/; on by
# default once a public URL is configured (Twilio cannot reach the local default).
TWILIO_STATUS_CALLBACKS = env_bool("TWILIO_STATUS_CALLBACKS", "PUBLIC_BASE_URL" in os.environ)
# Marketing mail leaves on the ESP's bulk stream so it never shares reputation with transactional mail:
# Postmark's broadcast message stream, and the SES configuration set for marketing (none when empty).
MARKETING_POSTMARK_STREAM = os.environ.get("TANDEM_POSTMARK_BROADCAST_STREAM", "broadcast")
MARKETING_SES_CONFIGURATION_SET = os.environ.get("TANDEM_SES_CONFIGURATION_SET", "")

# --- Push ------------------------------------------------------------------------------------
# FCM HTTP v1 through firebase-admin. Credentials: a service-account JSON file (FCM_CREDENTIALS_FILE),
# else Google application default credentials when GOOGLE_APPLICATION_CREDENTIALS is set.
# FCM_PROJECT_ID is needed only when the credentials do not name the project.
FCM_CREDENTIALS_FILE = os.environ.get("FCM_CREDENTIALS_FILE", "")
FCM_PROJECT_ID = os.environ.get("FCM_PROJECT_ID", "")
# Web push keys (VAPID): the public key is handed to browsers when they subscribe (FCM web tokens are
# minted with it); the private key and subject let django-push-notifications sign its own web pushes.
WEBPUSH_VAPID_PUBLIC_KEY = os.environ.get("WEBPUSH_VAPID_PUBLIC_KEY", "")
PUSH_NOTIFICATIONS_SETTINGS = {
    "WP_PRIVATE_KEY": os.environ.get("WEBPUSH_VAPID_PRIVATE_KEY") or None,
    "WP_CLAIMS": {"sub": os.environ.get("WEBPUSH_VAPID_SUBJECT", "mailto:no-reply@tandem.example")},
}

# Campaign messages on a channel with no provider configured land in the outbox (shown in the admin).
_PROVIDERS = {
    "email": "EMAIL_BACKEND" in os.environ,
    "sms": bool(TWILIO_ACCOUNT_SID),
    # Apps through FCM, browsers through web push: either one makes push a real channel.
    "push": bool(
        FCM_CREDENTIALS_FILE
        or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        or PUSH_NOTIFICATIONS_SETTINGS["WP_PRIVATE_KEY"]
    ),
}
# Provider rate limits shared by every worker, over the defaults in campaigns/delivery/conf.py, as JSON:
# {"email:postmark": {"rate": 200, "burst": 200}, "twilio:+14155550100": {"rate": 10}}.
try:
    DELIVERY_RATE_LIMITS = json.loads(os.environ.get("TANDEM_RATE_LIMITS", "") or "{}")
except ValueError as exc:
    raise ImproperlyConfigured(f"TANDEM_RATE_LIMITS is not valid JSON: {exc}") from exc
if not isinstance(DELIVERY_RATE_LIMITS, dict):
    raise ImproperlyConfigured("TANDEM_RATE_LIMITS must be a JSON object of provider -> {rate, burst}.")
# Benchmarks: these channels build real payloads and count them instead of sending (campaigns/channels/null.py).
TANDEM_NULL_CHANNELS = env_list("TANDEM_NULL_CHANNELS")
DELIVERY_OUTBOX_CHANNELS = env_list("TANDEM_OUTBOX_CHANNELS") if "TANDEM_OUTBOX_CHANNELS" in os.environ else [
    channel for channel, configured in _PROVIDERS.items() if not configured and channel not in TANDEM_NULL_CHANNELS
]

# --- Product ---------------------------------------------------------------------------------
TANDEM = {
    "BRAND_NAME": os.environ.get("TANDEM_BRAND_NAME", "Tandem Stores"),
    "DEFAULT_PHONE_REGION": os.environ.get("TANDEM_DEFAULT_PHONE_REGION", "US"),
    "EMAIL_DOUBLE_OPT_IN": env_bool("TANDEM_EMAIL_DOUBLE_OPT_IN", True),
    "CONFIRMATION_LINK_MAX_AGE_DAYS": int(os.environ.get("TANDEM_CONFIRMATION_LINK_MAX_AGE_DAYS", "7")),
    # Preference-centre links in messages stop working after this (unsubscribe links never expire).
    "PREFERENCE_LINK_MAX_AGE_DAYS": int(os.environ.get("TANDEM_PREFERENCE_LINK_MAX_AGE_DAYS", "60")),
    "CAPTURE_RATE_LIMIT_PER_MINUTE": int(os.environ.get("TANDEM_CAPTURE_RATE_LIMIT_PER_MINUTE", "30")),
    "LOGIN_RATE_LIMIT_PER_MINUTE": int(os.environ.get("TANDEM_LOGIN_RATE_LIMIT_PER_MINUTE", "10")),
    # Campaigns: the postal address every marketing email carries (CAN-SPAM), and channel limits.
    "POSTAL_ADDRESS": os.environ.get(
        "TANDEM_POSTAL_ADDRESS", "Tandem Stores, 1 Main Street, Springfield, NY 12345, USA"
    ),
    "SMS_MAX_SEGMENTS": int(os.environ.get("TANDEM_SMS_MAX_SEGMENTS", "4")),
    "PUSH_TITLE_MAX_CHARS": int(os.environ.get("TANDEM_PUSH_TITLE_MAX_CHARS", "65")),
    "PUSH_BODY_MAX_CHARS": int(os.environ.get("TANDEM_PUSH_BODY_MAX_CHARS", "240")),
    # What a HELP reply says (compliance.md: programme, contact, frequency, rates, how to opt out).
    "SMS_HELP_CONTACT": os.environ.get("TANDEM_SMS_HELP_CONTACT", "help@tandem.example"),
    "SMS_FREQUENCY": os.environ.get("TANDEM_SMS_FREQUENCY", "up to 4 msgs/month"),
}
# A sending campaign pauses itself past these rates per channel, once MIN_SENDS were sent
# (campaigns/feedback/health.py). Settings may tighten the Gmail/Yahoo complaint ceiling, not loosen it.
SENDER_HEALTH = {
    "MAX_COMPLAINT_RATE": float(os.environ.get("TANDEM_MAX_COMPLAINT_RATE", "0.003")),
    "MAX_HARD_BOUNCE_RATE": float(os.environ.get("TANDEM_MAX_HARD_BOUNCE_RATE", "0.05")),
    "MIN_SENDS": int(os.environ.get("TANDEM_SENDER_HEALTH_MIN_SENDS", "200")),
}
if not 0 < SENDER_HEALTH["MAX_COMPLAINT_RATE"] <= 0.003:
    raise ImproperlyConfigured("TANDEM_MAX_COMPLAINT_RATE must be above 0 and at most 0.003 (0.3 %).")
if not 0 < SENDER_HEALTH["MAX_HARD_BOUNCE_RATE"] < 1:
    raise ImproperlyConfigured("TANDEM_MAX_HARD_BOUNCE_RATE must be a fraction between 0 and 1.")

# --- Security --------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default config gives "django" its own console handler as well as the root's: every
        # warning printed twice. One handler, the root's.
        "django": {"handlers": [], "propagate": True},
        # A 4xx is already one line of the web server's access log (runserver, gunicorn); the request
        # logger repeats it. Server errors (5xx) still log with their traceback.
        "django.request": {"level": os.environ.get("DJANGO_REQUEST_LOG_LEVEL", "ERROR")},
        # twilio logs every request's headers and body at INFO: the phone number and text of every SMS,
        # and a large share of the CPU of a send. Its warnings and errors still show.
        "twilio.http_client": {"level": os.environ.get("TWILIO_LOG_LEVEL", "WARNING")},
        # The other SDKs' request logs (HTTP connections, AWS SES, Firebase): warnings and errors only.
        **{name: {"level": "WARNING"} for name in ("urllib3", "botocore", "boto3", "google", "firebase_admin")},
    },
}
# The demo's console mail backend prints in the worker; Celery logs a worker's stdout, at WARNING by
# default, which tags every line of every mail as a warning.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"

if os.environ.get("TANDEM_TESTING"):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
