"""Clerk pages at the till: thin views over the customers services."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from customers.capture_hooks import capture_links, capture_note
from customers.exceptions import CustomerError, InvalidContact
from customers.forms import CaptureForm
from customers.models import Channel, ConsentMethod, ConsentStatus, Source
from customers.normalization import mask_email, mask_phone, normalize_email, normalize_phone
from customers.ratelimit import client_ip, rate_limit_hit
from customers.selectors import (
    consent_states_for,
    customer_find_by_contact,
    disclosure_current,
    stores_for_user,
)
from customers.services import ConsentRequest, customer_capture
from customers.services.consent import Evidence

SESSION_STORE_KEY = "till_store_id"


class TillLoginView(auth_views.LoginView):
    template_name = "till/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        limit = settings.TANDEM["LOGIN_RATE_LIMIT_PER_MINUTE"]
        if rate_limit_hit(scope="till-login", key=client_ip(request), limit=limit):
            form = self.get_form()
            form.add_error(None, "Too many attempts. Wait a minute and try again.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def get_default_redirect_url(self):
        if self.request.user.is_staff and not stores_for_user(self.request.user).exists():
            return reverse("admin:index")
        return reverse("till:capture")


def till_login_required(view):
    """The user is logged in and works at a store; ``request.till_store`` is the store they act for."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('till:login')}?next={request.path}")
        stores = list(stores_for_user(request.user))
        if not stores:
            return render(request, "till/no_store.html", status=403)
        chosen = request.session.get(SESSION_STORE_KEY)
        store = next((s for s in stores if s.pk == chosen), None)
        if store is None:
            if len(stores) > 1:
                return redirect(f"{reverse('till:choose-store')}?next={request.path}")
            store = stores[0]
            request.session[SESSION_STORE_KEY] = store.pk
        request.till_store = store
        request.till_stores = stores
        return view(request, *args, **kwargs)

    return wrapper


@require_http_methods(["GET", "POST"])
def choose_store(request):
    if not request.user.is_authenticated:
        return redirect("till:login")
    stores = list(stores_for_user(request.user))
    if request.method == "POST":
        try:
            wanted = int(request.POST.get("store", ""))
        except ValueError:
            wanted = None
        store = next((s for s in stores if s.pk == wanted), None)
        if store is None:
            return HttpResponseForbidden("You do not work at that store.")
        request.session[SESSION_STORE_KEY] = store.pk
        next_url = request.POST.get("next") or ""
        return redirect(next_url if next_url.startswith("/till/") else reverse("till:capture"))
    return render(request, "till/choose_store.html", {"stores": stores, "next": request.GET.get("next", "")})


def _disclosures(locale: str = "en") -> dict:
    return {
        "email": disclosure_current(channel=Channel.EMAIL, locale=locale),
        "sms": disclosure_current(channel=Channel.SMS, locale=locale),
    }


@till_login_required
@require_http_methods(["GET", "POST"])
def capture(request):
    store = request.till_store
    disclosures = _disclosures()
    if request.method == "POST":
        limit = settings.TANDEM["CAPTURE_RATE_LIMIT_PER_MINUTE"]
        if rate_limit_hit(scope="till-capture", key=str(request.user.pk), limit=limit):
            form = CaptureForm(request.POST, store=store)
            form.is_valid()
            form.add_error(None, "Too many captures in a minute. Wait a moment and try again.")
            return render(request, "till/capture.html", _capture_context(request, form, disclosures), status=429)
        form = CaptureForm(request.POST, store=store)
        if form.is_valid():
            data = form.cleaned_data
            consents = []
            if data["consent_email"]:
                consents.append(ConsentRequest(channel=Channel.EMAIL))
            if data["consent_sms"]:
                consents.append(ConsentRequest(channel=Channel.SMS))
            missing = [c.channel for c in consents if disclosures[c.channel] is None]
            if missing:
                form.add_error(None, "No consent text is published for this channel yet; ask your manager.")
            else:
                try:
                    result = _capture_with_disclosures(request, data, consents, disclosures)
                except (InvalidContact, CustomerError) as exc:
                    form.add_error(None, str(exc))
                else:
                    lines = []
                    for extension in form.extensions:
                        lines += extension.after_capture(
                            result=result, cleaned_data=data, store=store, clerk=request.user
                        )
                    request.session["till_last_capture"] = _capture_summary(result, lines)
                    return redirect("till:capture-done")
        status = 400
    else:
        form = CaptureForm(store=store)
        status = 200
    return render(request, "till/capture.html", _capture_context(request, form, disclosures), status=status)


def _capture_with_disclosures(request, data, consents, disclosures):
    evidence = None
    if consents:
        evidence = Evidence(
            method=ConsentMethod.CHECKOUT,
            store=request.till_store,
            collected_by=request.user,
            url=request.build_absolute_uri()[:500],
            ip_address=client_ip(request) if client_ip(request) != "unknown" else None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
        )
    return customer_capture(
        email=data.get("email"),
        phone=data.get("phone"),
        first_name=data.get("first_name"),
        source=Source.STORE,
        store=request.till_store,
        clerk=request.user,
        consents=[ConsentRequest(channel=c.channel, disclosure=disclosures[c.channel]) for c in consents],
        evidence=evidence,
    )


def _capture_summary(result, lines: list) -> dict:
    customer = result.customer
    states = consent_states_for(customer)
    if result.phone_customer is not None:
        states[Channel.SMS] = consent_states_for(result.phone_customer)[Channel.SMS]
    return {
        "created": result.created,
        "first_name": customer.first_name,
        "email": mask_email(customer.email) if customer.email else "",
        "phone": mask_phone(customer.phone) if customer.phone else "",
        "consent": {channel: ConsentStatus(status).label for channel, status in states.items()},
        "email_pending": states[Channel.EMAIL] == ConsentStatus.PENDING,
        "merge_proposed": result.merge_proposal is not None,
        "suppressed": sorted(result.suppressed),
        "extra": [capture_note(line) for line in lines],
    }


def _capture_context(request, form, disclosures) -> dict:
    return {
        "form": form,
        "store": request.till_store,
        "stores": request.till_stores,
        "disclosures": disclosures,
        "extension_templates": [extension.template_name for extension in form.extensions],
        "till_links": capture_links(),
        # Shown first on the page, above the form, so the clerk sees why nothing was saved.
        "answer_form": form,
        "answer_title": "Not saved:",
    }


@till_login_required
def capture_done(request):
    summary = request.session.pop("till_last_capture", None)
    if summary is None:
        return redirect("till:capture")
    context = {
        "summary": summary,
        "store": request.till_store,
        "stores": request.till_stores,
        "till_links": capture_links(),
    }
    return render(request, "till/capture_done.html", context)


@till_login_required
@require_POST
def lookup(request):
    """Find a profile by email or phone; answers only a first name and masked contacts."""
    if rate_limit_hit(scope="till-lookup", key=str(request.user.pk), limit=60):
        return JsonResponse({"error": "Too many look-ups; wait a minute."}, status=429)
    email = phone = None
    try:
        if request.POST.get("email", "").strip():
            email = normalize_email(request.POST["email"])
        if request.POST.get("phone", "").strip():
            phone = normalize_phone(request.POST["phone"], region=request.till_store.country)
    except InvalidContact as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    if not email and not phone:
        return JsonResponse({"error": "Enter an email address or a phone number."}, status=400)
    customer = customer_find_by_contact(email=email, phone=phone)
    if customer is None:
        return JsonResponse({"found": False})
    states = consent_states_for(customer)
    return JsonResponse(
        {
            "found": True,
            "first_name": customer.first_name,
            "email": mask_email(customer.email) if customer.email else "",
            "phone": mask_phone(customer.phone) if customer.phone else "",
            "consent": {channel: ConsentStatus(status).label for channel, status in states.items()},
        }
    )
