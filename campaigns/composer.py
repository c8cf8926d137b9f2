"""Compile a variant once, render it for many customers: email inside the brand layout, SMS, push."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict

import css_inline
from django.conf import settings
from django.template.loader import get_template

from campaigns.htmlcheck import html_problems, problems_message, template_html_problems
from campaigns.htmltext import html_to_text
from campaigns.rendering import PLACEHOLDERS, CompiledTemplate, RenderError, TemplateProblem, compile_html, compile_text
from campaigns.sms import SmsCount, sms_count, sms_marketing_problems
from customers.models import Channel

LAYOUT_TEMPLATE = "emails/campaign_layout.html"
BODY_MARKER = "<!-- MESSAGE BODY -->"
MARKETER_NAMES = frozenset(PLACEHOLDERS)
LAYOUT_NAMES = MARKETER_NAMES | {"preheader", "postal_address"}
TEXT_FOOTER = (
    "\n\n-- \n{{ brand_name }}, {{ postal_address }}\n"
    "Unsubscribe: {{ unsubscribe_url }}\nEmail preferences: {{ preferences_url }}\n"
)
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_STASHED = re.compile(r"tandemjinja(\d+)x")


@dataclasses.dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


@dataclasses.dataclass(frozen=True)
class RenderedSms:
    body: str
    count: SmsCount


@dataclasses.dataclass(frozen=True)
class RenderedPush:
    title: str
    body: str
    url: str
    image_url: str


def _layout_source() -> str:
    return get_template(LAYOUT_TEMPLATE).template.source


def inline_css_once(source: str) -> str | None:
    """Inline CSS into a template's source, keeping its placeholders; ``None`` if the HTML parser moved them."""
    tags: list[str] = []

    def stash(match: re.Match) -> str:
        tags.append(match.group(0))
        return f"tandemjinja{len(tags) - 1}x"

    inlined = css_inline.inline(_JINJA_TAG.sub(stash, source))
    if [int(n) for n in _STASHED.findall(inlined)] != list(range(len(tags))):
        return None
    return _STASHED.sub(lambda match: tags[int(match.group(1))], inlined)


class CompiledVariant:
    """Templates of one variant, checked and compiled; ``render`` takes a placeholder context."""

    def __init__(self, variant):
        self.channel = variant.channel
        text = lambda source: compile_text(source, allowed_names=MARKETER_NAMES)  # noqa: E731
        if self.channel == Channel.EMAIL:
            self.subject = text(variant.subject)
            self.preheader = text(variant.preheader)
            body = compile_html(variant.html_body, allowed_names=MARKETER_NAMES)  # the marketer's part alone
            # The footer must stay visible: a body that leaves a comment, <title>, <textarea>, <template>…
            # open is refused here too (text can reach the database without the authoring checks), and
            # one with {% if %} blocks is checked again as rendered for each recipient.
            problems = template_html_problems(variant.html_body)
            if problems:
                raise TemplateProblem(problems_message(problems))
            self.body_per_render = body if "{%" in variant.html_body else None
            composed = _layout_source().replace(BODY_MARKER, variant.html_body)
            inlined = inline_css_once(composed)
            self.inline_per_render = inlined is None
            self.html = compile_html(inlined or composed, allowed_names=LAYOUT_NAMES)
            text_source = variant.text_body.strip() or html_to_text(variant.html_body)
            text(text_source)
            self.text = compile_text(text_source + TEXT_FOOTER, allowed_names=LAYOUT_NAMES)
            templates = (self.subject, self.preheader, self.html, self.text)
        elif self.channel == Channel.SMS:
            self.sms = text(variant.sms_body)
            # Checked on every rendered text: a conditional can drop the line for real recipients
            # although the sample values used at authoring kept it.
            self.sms_marketing = variant.message_id is None or variant.message.is_marketing
            templates = (self.sms,)
        else:
            self.title = text(variant.push_title)
            self.body = text(variant.push_body)
            self.url = text(variant.push_url)
            self.image_url = variant.push_image_url
            templates = (self.title, self.body, self.url)
        # The placeholders any of its parts reads; an email's List-Unsubscribe header needs its link too.
        self.names = frozenset().union(*(template.names for template in templates))
        if self.channel == Channel.EMAIL:
            self.names |= {"unsubscribe_url"}

    def render(self, context: dict[str, str]):
        if self.channel == Channel.EMAIL:
            if self.body_per_render is not None:
                problems = html_problems(self.body_per_render.render(context))
                if problems:
                    raise RenderError(problems_message(problems))
            preheader = self.preheader.render(context)
            full = {**context, "preheader": preheader, "postal_address": settings.TANDEM["POSTAL_ADDRESS"]}
            html = self.html.render(full)
            if self.inline_per_render:
                html = css_inline.inline(html)
            return RenderedEmail(
                subject=" ".join(self.subject.render(context).split()),
                preheader=preheader,
                html=html,
                text=self.text.render(full),
            )
        if self.channel == Channel.SMS:
            body = self.sms.render(context)
            if self.sms_marketing:
                problems = sms_marketing_problems(body, brand=settings.TANDEM["BRAND_NAME"])
                if problems:
                    raise RenderError(" ".join(problems))
            return RenderedSms(body=body, count=sms_count(body))
        return RenderedPush(
            title=self.title.render(context),
            body=self.body.render(context),
            url=self.url.render(context),
            image_url=self.image_url,
        )


_cache: OrderedDict[tuple, CompiledVariant] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 256


def variant_compiled(variant) -> CompiledVariant:
    """The compiled templates of ``variant``, compiled at most once per saved version in a process."""
    key = (variant.pk, variant.updated_at, variant.channel) if variant.pk else None
    if key is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    compiled = CompiledVariant(variant)
    if key is not None:
        with _cache_lock:
            _cache[key] = compiled
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return compiled


__all__ = ["CompiledTemplate", "CompiledVariant", "RenderedEmail", "RenderedPush", "RenderedSms", "variant_compiled"]
