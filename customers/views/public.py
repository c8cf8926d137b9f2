"""Pages for customers without a login: reached from a signed link."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from customers.exceptions import CustomerError, ExpiredToken, InvalidToken
from customers.models import SurveyResponse
from customers.ratelimit import client_ip, rate_limit_hit
from customers.selectors import preference_page_context
from customers.services import consent_confirm
from customers.services.preferences import Choice, preference_choice_apply, preference_link_read
from customers.services.surveys import survey_answer, survey_link_read, survey_response_for


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


BAD_TOKENS_PER_MINUTE = 30
PREFERENCE_POSTS_PER_MINUTE = 30

_NOTICES = {
    Choice.CATEGORY_LEAVE: _("Done: you will get no more messages of that kind."),
    Choice.CATEGORY_REJOIN: _("Done: you will get messages of that kind again."),
    Choice.WEEKLY_ONE: _("Done: at most one message a week from now on."),
    Choice.WEEKLY_ANY: _("Done: your weekly limit is removed."),
    Choice.PAUSE: _("Done: your messages are paused."),
    Choice.RESUME: _("Done: your messages are back on."),
    Choice.EMAIL_LEAVE: _("Done: you will get no more marketing email."),
    Choice.SWITCH_TO_SMS: _("Done: no more marketing email; we will text you instead."),
    Choice.EMAIL_RESUBSCRIBE: _("Almost done: please confirm with the link we just emailed you."),
}


def _ip(request) -> str | None:
    address = client_ip(request)
    return None if address == "unknown" else address


@csrf_exempt  # the signed token in the address authorises the change, so the page works with cookies off
@require_http_methods(["GET", "POST"])
def preferences_view(request, token: str):
    """The preference centre. GET shows the state and changes nothing (link scanners fetch links);
    each POST applies one choice and shows the new state."""
    try:
        link = preference_link_read(token=token)
    except ExpiredToken:
        return render(request, "public/preferences_expired.html", status=410)
    except InvalidToken:
        # Only bad tokens count towards the limit: many customers share a few mobile-network addresses.
        if rate_limit_hit(scope="preferences-bad-token", key=client_ip(request), limit=BAD_TOKENS_PER_MINUTE):
            return render(request, "public/preferences_invalid.html", status=429)
        return render(request, "public/preferences_invalid.html", status=404)
    customer = link.customer
    with translation.override(customer.locale or settings.LANGUAGE_CODE):
        notice = error = ""
        status = 200
        if request.method == "POST":
            if rate_limit_hit(scope="preferences-post", key=client_ip(request), limit=PREFERENCE_POSTS_PER_MINUTE):
                return render(request, "public/preferences_invalid.html", status=429)
            try:
                applied = preference_choice_apply(
                    link=link,
                    choice=request.POST.get("choice", ""),
                    form=request.POST,
                    url=request.build_absolute_uri()[:500],
                    ip_address=_ip(request),
                    user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
                )
            except CustomerError as exc:
                error, status = str(exc), 400
            else:
                notice = _NOTICES[applied]
            customer.refresh_from_db()
        context = preference_page_context(link=link, customer=customer)
        context.update(notice=notice, error=error, token=token)
        return render(request, "public/preferences.html", context, status=status)


SURVEY_POSTS_PER_MINUTE = 30


@csrf_exempt  # the signed token in the address authorises the answer, so the page works with cookies off
@require_http_methods(["GET", "POST"])
def survey_view(request, token: str):
    """The 0-10 question. GET shows it (and any answer already given) and changes nothing; POST records."""
    try:
        link = survey_link_read(token=token)
    except ExpiredToken:
        return render(request, "public/survey_closed.html", status=410)
    except InvalidToken:
        if rate_limit_hit(scope="survey-bad-token", key=client_ip(request), limit=BAD_TOKENS_PER_MINUTE):
            return render(request, "public/link_invalid.html", status=429)
        return render(request, "public/link_invalid.html", status=404)
    with translation.override(link.customer.locale or settings.LANGUAGE_CODE):
        answer = survey_response_for(link)
        error, thanks, status = "", False, 200
        score, comment = (answer.score, answer.comment) if answer else (None, "")
        if request.method == "POST":
            if rate_limit_hit(scope="survey-post", key=client_ip(request), limit=SURVEY_POSTS_PER_MINUTE):
                return render(request, "public/link_invalid.html", status=429)
            try:
                answer = survey_answer(
                    link=link, score=request.POST.get("score"), comment=request.POST.get("comment", "")
                )
            except CustomerError as exc:
                error, status = str(exc), 400
                comment = request.POST.get("comment", "")[: SurveyResponse.MAX_COMMENT]
            else:
                thanks, score, comment = True, answer.score, answer.comment
        context = {
            "brand": settings.TANDEM["BRAND_NAME"],
            "scores": range(11),
            "score": score,
            "comment": comment,
            "answered": answer is not None,
            "thanks": thanks,
            "error": error,
            "max_comment": SurveyResponse.MAX_COMMENT,
        }
        return render(request, "public/survey.html", context, status=status)
