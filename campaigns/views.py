"""Public views the messages link to; the studio's own pages live in the admin (campaigns/admin.py)."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns.links import UNSUBSCRIBE_PURPOSE
from customers.exceptions import InvalidToken
from customers.models import Channel, ConsentMethod, Customer
from customers.ratelimit import client_ip, rate_limit_hit
from customers.services.consent import Evidence, consent_withdraw
from customers.tokens import token_read

BAD_TOKENS_PER_MINUTE = 30


@csrf_exempt  # RFC 8058: the mailbox provider POSTs without cookies; the signed token authorises it.
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token: str):
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST unsubscribes, no redirect."""
    try:
        payload = token_read(purpose=UNSUBSCRIBE_PURPOSE, token=token)
    except InvalidToken:
        # Only bad tokens count: mailbox providers post many genuine one-click requests from few IPs.
        if rate_limit_hit(scope="unsubscribe-bad-token", key=client_ip(request), limit=BAD_TOKENS_PER_MINUTE):
            return render(request, "campaigns/unsubscribe_invalid.html", status=429)
        return render(request, "campaigns/unsubscribe_invalid.html", status=404)
    if payload.get("preview"):
        return render(request, "campaigns/unsubscribe_preview.html")
    customer = Customer.objects.active().filter(public_id=payload.get("c")).first()
    channel = payload.get("ch")
    channels = Channel.values if channel == "all" else [channel]
    if customer is None or any(item not in Channel.values for item in channels):
        return render(request, "campaigns/unsubscribe_invalid.html", status=404)
    context = {"channels": [Channel(item).label for item in channels], "token": token}
    if request.method == "GET":
        return render(request, "campaigns/unsubscribe_confirm.html", context)
    with transaction.atomic():
        for item in channels:
            consent_withdraw(
                customer=customer,
                channel=item,
                evidence=Evidence(
                    method=ConsentMethod.ONE_CLICK,
                    url=request.build_absolute_uri()[:500],
                    ip_address=request.META.get("REMOTE_ADDR"),
                    user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
                    source_reference=str(payload.get("s", ""))[:200],
                ),
            )
    response = render(request, "campaigns/unsubscribe_done.html", context)
    return response if isinstance(response, HttpResponse) else HttpResponse(status=200)
