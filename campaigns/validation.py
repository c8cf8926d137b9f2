"""Checks a variant must pass before it is stored; warnings are returned, refusals raised."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from campaigns.composer import MARKETER_NAMES
from campaigns.htmlcheck import problems_message, template_html_problems
from campaigns.rendering import TemplateProblem, compile_html, compile_text, placeholder_context, unconditional_text
from campaigns.sms import OPT_OUT, sms_count, sms_marketing_problems
from customers.models import Channel

_DEEP_LINK = re.compile(r"^[a-z][a-z0-9+.-]{1,30}://[^\s]*$")
_FIELDS = {
    Channel.EMAIL: ("subject", "preheader", "html_body", "text_body"),
    Channel.SMS: ("sms_body",),
    Channel.PUSH: ("push_title", "push_body", "push_url"),
}


def _sample_context() -> dict[str, str]:
    """Placeholder values long enough to be honest about lengths (a long first name, a long store)."""
    context = placeholder_context(
        links={
            "unsubscribe_url": "https://x.example/u",
            "preferences_url": "https://x.example/p",
            "survey_url": "https://x.example/s/a-signed-token-of-about-this-length",
        }
    )
    context.update(first_name="Alexandra", store_name="Fifth Avenue", last_name="Smith")
    return context


def variant_check(variant) -> list[str]:
    """Raise ``ValidationError`` (per field) for anything we refuse; return warnings for the rest."""
    errors: dict[str, list[str]] = {}
    warnings: list[str] = []
    if variant.persona_id and not variant.persona.is_persona:
        errors.setdefault("persona", []).append("Choose a segment marked as a persona, or leave empty for the default.")
    for field in _FIELDS.get(variant.channel, ()):
        source = getattr(variant, field) or ""
        try:
            (compile_html if field == "html_body" else compile_text)(source, allowed_names=MARKETER_NAMES)
        except TemplateProblem as problem:
            errors.setdefault(field, []).append(str(problem))
            continue
        if field == "html_body":
            problems = template_html_problems(source)
            if problems:
                errors.setdefault(field, []).append(problems_message(problems))
    marketing = variant.message_id is None or variant.message.is_marketing
    if variant.channel == Channel.EMAIL:
        if not variant.subject.strip():
            errors.setdefault("subject", []).append("An email needs a subject.")
        if not variant.html_body.strip():
            errors.setdefault("html_body", []).append("An email needs a body.")
    elif variant.channel == Channel.SMS:
        body = variant.sms_body.strip()
        if not body:
            errors.setdefault("sms_body", []).append("A text message needs a body.")
        elif "sms_body" not in errors:
            _sms_rules(variant, marketing, errors, warnings)
    elif variant.channel == Channel.PUSH:
        _push_rules(variant, errors)
    if errors:
        raise ValidationError(errors)
    return warnings


def _sms_rules(variant, marketing: bool, errors: dict, warnings: list[str]) -> None:
    brand = settings.TANDEM["BRAND_NAME"]
    limit = settings.TANDEM["SMS_MAX_SEGMENTS"]
    rendered = compile_text(variant.sms_body, allowed_names=MARKETER_NAMES).render(_sample_context())
    count = sms_count(rendered)
    if count.segments > limit:
        errors.setdefault("sms_body", []).append(
            f"This text needs {count.segments} segments ({count.encoding}, {count.units} units); the limit is {limit}."
        )
    elif count.segments > 1:
        warnings.append(f"This text is {count.segments} segments ({count.encoding}); each is billed.")
    if count.encoding == "UCS-2" and count.non_gsm:
        warnings.append(f"{''.join(count.non_gsm)} switch the text to UCS-2 (70 characters per segment).")
    if marketing:
        problems = sms_marketing_problems(rendered, brand=brand)
        if problems:
            errors.setdefault("sms_body", []).extend(problems)
        elif not OPT_OUT.search(unconditional_text(variant.sms_body)):
            # A sample recipient is one branch of an {% if %}: the line must reach every recipient.
            errors.setdefault("sms_body", []).append(
                '"Reply STOP to opt out" must stand outside {% if %} blocks, so every recipient gets it.'
            )


def _push_rules(variant, errors: dict) -> None:
    title_max = settings.TANDEM["PUSH_TITLE_MAX_CHARS"]
    body_max = settings.TANDEM["PUSH_BODY_MAX_CHARS"]
    context = _sample_context()
    if not variant.push_title.strip():
        errors.setdefault("push_title", []).append("A push notification needs a title.")
    elif "push_title" not in errors:
        title = compile_text(variant.push_title, allowed_names=MARKETER_NAMES).render(context)
        if len(title) > title_max:
            errors.setdefault("push_title", []).append(f"{len(title)} characters; at most {title_max}.")
    if not variant.push_body.strip():
        errors.setdefault("push_body", []).append("A push notification needs a body.")
    elif "push_body" not in errors:
        body = compile_text(variant.push_body, allowed_names=MARKETER_NAMES).render(context)
        if len(body) > body_max:
            errors.setdefault("push_body", []).append(f"{len(body)} characters; at most {body_max}.")
    url = variant.push_url.strip()
    if url and "push_url" not in errors and "{" not in url:
        if url.startswith(("http://", "https://")):
            try:
                URLValidator(schemes=["https"])(url)
            except ValidationError:
                errors.setdefault("push_url", []).append("Use an https:// address or an app deep link.")
        elif not _DEEP_LINK.match(url) or url.lower().startswith(("javascript:", "data:")):
            errors.setdefault("push_url", []).append("Use an https:// address or an app deep link (myapp://…).")
    if variant.push_image_url and not variant.push_image_url.startswith("https://"):
        errors.setdefault("push_image_url", []).append("Images must be served over https://.")
