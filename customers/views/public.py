"""Pages for customers without a login: reached from a signed link."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from customers.exceptions import InvalidToken
from customers.ratelimit import client_ip, rate_limit_hit
from customers.services import consent_confirm


@require_http_methods(["GET", "POST"])
def consent_confirm_view(request, token: str):
    """GET shows a button (link scanners fetch links); only the POST confirms."""
    if rate_limit_hit(scope="public-confirm", key=client_ip(request), limit=60):
        return render(request, "public/link_invalid.html", status=429)
    if request.method == "GET":
        return render(request, "public/consent_confirm.html", {"token": token})
    try:
        customer = consent_confirm(
            token=token,
            ip_address=client_ip(request) if client_ip(request) != "unknown" else None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
            url=request.build_absolute_uri()[:500],
        )
    except InvalidToken:
        return render(request, "public/link_invalid.html", status=400)
    return render(request, "public/consent_confirmed.html", {"customer": customer})
