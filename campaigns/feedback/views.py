"""Provider webhooks: Twilio's replies and status callbacks, and the guard on anymail's tracking URLs.

Thin: check who is calling, read the few fields needed, call one service. Nothing is changed for a
request that fails its check.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns.feedback.sms import sms_inbound_receive, sms_status_record
from customers.ratelimit import client_ip, rate_limit_hit

TWILIO_SID = re.compile(r"^(?:SM|MM)[0-9a-fA-F]{32}$")
REFUSED_PER_MINUTE = 30


def twilio_signature_valid(request) -> bool:
    """``X-Twilio-Signature`` over the public URL Twilio called (``PUBLIC_BASE_URL`` + path) and the POST fields.

    Behind a proxy the host and scheme Django sees are not the ones Twilio signed, so the configured
    public base URL is used, never the request's own.
    """
    from twilio.request_validator import RequestValidator

    token = settings.TWILIO_AUTH_TOKEN
    signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
    if not token or not signature:
        return False
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    return RequestValidator(token).validate(url, request.POST, signature)


def _refused(request) -> HttpResponse:
    if rate_limit_hit(scope="twilio-webhook-refused", key=client_ip(request), limit=REFUSED_PER_MINUTE):
        return HttpResponse(status=429)
    return HttpResponseForbidden()


def _twiml(text: str) -> HttpResponse:
    from twilio.twiml.messaging_response import MessagingResponse

    response = MessagingResponse()
    if text:
        response.message(text)  # the TwiML writer escapes it
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


@csrf_exempt  # Twilio posts without cookies; its signature authorises the request.
@require_POST
def twilio_inbound_view(request):
    """A text sent to our number: opt-out keywords and their kin, answered in TwiML."""
    if not twilio_signature_valid(request):
        return _refused(request)
    message_sid = request.POST.get("MessageSid", "")
    if not TWILIO_SID.match(message_sid):
        return HttpResponseBadRequest("MessageSid missing or malformed.")
    result = sms_inbound_receive(
        message_sid=message_sid,
        from_number=request.POST.get("From", "")[:40],
        body=request.POST.get("Body", "")[:1600],
        opt_out_type=request.POST.get("OptOutType", "")[:16],
    )
    return _twiml(result.reply)


@csrf_exempt
@require_POST
def twilio_status_view(request, delivery_id: int):
    """A status callback for the text of one delivery (its id is in the URL we gave Twilio)."""
    if not twilio_signature_valid(request):
        return _refused(request)
    message_sid = request.POST.get("MessageSid", "") or request.POST.get("SmsSid", "")
    status = request.POST.get("MessageStatus", "") or request.POST.get("SmsStatus", "")
    if not TWILIO_SID.match(message_sid) or not status:
        return HttpResponseBadRequest("MessageSid or MessageStatus missing or malformed.")
    sms_status_record(
        delivery_id=delivery_id,
        message_sid=message_sid,
        status=status[:20],
        error_code=request.POST.get("ErrorCode", "")[:10],
    )
    return HttpResponse(status=204)
