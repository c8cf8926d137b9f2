"""anymail's own tracking webhook URLs, refused (403) unless ``ANYMAIL["WEBHOOK_SECRET"]`` is set.

Without the secret anymail only warns and accepts anyone's events; for most ESPs that basic-auth
secret is the only proof a request came from the ESP.
"""

import functools

from anymail.urls import urlpatterns as anymail_urlpatterns
from django.conf import settings
from django.http import HttpResponseForbidden
from django.urls import URLPattern
from django.views.decorators.csrf import csrf_exempt


def _secret_required(view):
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"):
            return HttpResponseForbidden("Webhook secret not configured.")
        return view(request, *args, **kwargs)

    return csrf_exempt(guarded)


urlpatterns = [
    URLPattern(pattern.pattern, _secret_required(pattern.callback), pattern.default_args, pattern.name)
    for pattern in anymail_urlpatterns
    if isinstance(pattern, URLPattern) and (pattern.name or "").endswith("_tracking_webhook")
]
