"""Public views the messages link to; the studio's own pages live in the admin (campaigns/admin.py)."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns.services.unsubscribe import unsubscribe_apply, unsubscribe_link_read
from customers.exceptions import InvalidToken
from customers.models import Channel
from customers.ratelimit import client_ip, rate_limit_hit

BAD_TOKENS_PER_MINUTE = 30


@csrf_exempt  # RFC 8058: the mailbox provider POSTs without cookies; the signed token authorises it.
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token: str):
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST unsubscribes, no redirect."""
    try:
        link = unsubscribe_link_read(token=token)
    except InvalidToken:
        # Only bad tokens count: mailbox providers post many genuine one-click requests from few IPs.
        if rate_limit_hit(scope="unsubscribe-bad-token", key=client_ip(request), limit=BAD_TOKENS_PER_MINUTE):
            return render(request, "campaigns/unsubscribe_invalid.html", status=429)
        return render(request, "campaigns/unsubscribe_invalid.html", status=404)
    if link.preview:
        return render(request, "campaigns/unsubscribe_preview.html")
    context = {"channels": [Channel(item).label for item in link.channels], "token": token}
    if request.method == "GET":
        return render(request, "campaigns/unsubscribe_confirm.html", context)
    unsubscribe_apply(
        link=link,
        url=request.build_absolute_uri(),
        ip_address=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    return render(request, "campaigns/unsubscribe_done.html", context)
