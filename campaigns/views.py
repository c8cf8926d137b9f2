"""Public views the messages link to; the studio's own pages live in the admin (campaigns/admin.py)."""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns.services.push_devices import InvalidSubscription, subscription_parse, web_push_device_register
from campaigns.services.unsubscribe import unsubscribe_apply, unsubscribe_link_read
from customers.exceptions import CustomerError, InvalidToken
from customers.models import Channel, DisclosureText
from customers.ratelimit import client_ip, rate_limit_hit
from customers.services.preferences import preference_link_read

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


MAX_SUBSCRIPTION_BYTES = 4096


def _json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt  # the signed preference token in the address authorises it; the page posts without cookies
@require_http_methods(["POST"])
def push_subscribe_view(request, token: str):
    """Register this browser's web push subscription for the preference link's customer (JSON in, JSON out)."""
    try:
        link = preference_link_read(token=token)
    except InvalidToken:
        if rate_limit_hit(scope="push-bad-token", key=client_ip(request), limit=BAD_TOKENS_PER_MINUTE):
            return _json_error("Too many attempts.", 429)
        return _json_error("This link is not valid.", 404)
    if len(request.body) > MAX_SUBSCRIPTION_BYTES:
        return _json_error("Not a push subscription.", 400)
    try:
        data = json.loads(request.body)
        subscription = subscription_parse(data.get("subscription") if isinstance(data, dict) else None)
        disclosure = DisclosureText.objects.filter(pk=int(data.get("disclosure")), channel=Channel.PUSH).first()
    except (ValueError, TypeError, InvalidSubscription):
        return _json_error("Not a push subscription.", 400)
    if disclosure is None:
        return _json_error("The page was out of date; please reload it.", 400)
    address = client_ip(request)
    try:
        web_push_device_register(
            customer=link.customer,
            subscription=subscription,
            disclosure=disclosure,
            ip_address=None if address == "unknown" else address,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
            url=request.build_absolute_uri()[:500],
            source_reference=link.source_reference,
        )
    except CustomerError as exc:
        return _json_error(str(exc), 400)
    return JsonResponse({"registered": True}, status=201)


@require_http_methods(["GET"])
def push_worker_view(request):
    """The service worker that shows a web push notification and opens its https link when tapped."""
    response = render(request, "campaigns/push_worker.js", content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"  # browsers check it for updates; a stale worker would linger
    return response
