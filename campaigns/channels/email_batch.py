"""One ESP request for many recipients of one email: the ESP fills in each recipient's own values.

SendGrid (substitutions) and Mailgun (recipient variables) take one message with up to 1,000
recipients and a table of values per recipient, and substitute them into the subject, HTML and text.
The emails of a chunk that share a variant then leave in one request instead of one each, which is
most of what sending an email costs here: anymail's per-message work (address parsing, the
``requests`` call, the answer) is paid once per batch.

Exact by construction. A variant's *merge form* is its email rendered once with a marker in place of
every placeholder. A recipient joins a batch only when putting their values into the form (HTML-escaped
in the HTML, as the template escapes them) gives, byte for byte, the subject, HTML and text rendered for
them, and when nothing in their email looks like a merge field the ESP would substitute. Anything else
(a conditional that depends on their values, a filter, whitespace folded in the subject, a repeated
address) leaves on its own, as before.
"""

from __future__ import annotations

import dataclasses
import re

from markupsafe import escape

# Letters and a digit only: unchanged by HTML escaping, CSS inlining and the subject's whitespace folding.
_MARKER = "tandemmerge9{}9"
_MARKED = re.compile(r"tandemmerge9([a-z_]+)9")
_NAME = re.compile(r"[a-z_]+")
# Computed by the render itself, never a recipient's value.
_RENDER_OWN = frozenset({"preheader", "postal_address"})


@dataclasses.dataclass(frozen=True)
class MergeForm:
    """A variant's email with its placeholders marked: each part alternates literal text and a name."""

    subject: tuple[str, ...]
    html: tuple[str, ...]
    text: tuple[str, ...]
    html_names: frozenset[str]
    text_names: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Merge:
    """One recipient's place in a batch: the form, and their values for its HTML and text parts."""

    form: MergeForm
    html_values: dict[str, str]
    text_values: dict[str, str]


# Our merge-data keys: an email containing one is never batched, so the ESP substitutes only our fields.
RESERVED_KEYS = ("tandem_h_", "tandem_t_", "tandem_b_")


@dataclasses.dataclass(frozen=True)
class EspMerge:
    """How an ESP refers to a merge field in inline content, and how many recipients one request takes."""

    token_format: str  # a merge-data key -> the text the ESP replaces in the content
    keys_are_tokens: bool  # anymail passes merge-data keys through as the ESP's substitution strings
    reserved: tuple[str, ...]  # text that must not appear in an email: the ESP would substitute it
    size: int
    # The ESP substitutes merge fields in headers too (Mailgun): a header made of a merged value is sent
    # once with the field, instead of once per recipient.
    fields_in_headers: bool = False

    def token(self, key: str) -> str:
        return self.token_format.format(key)

    def data_key(self, key: str) -> str:
        return self.token(key) if self.keys_are_tokens else key


def esp_merge(connection) -> EspMerge | None:
    """The batch style of ``connection``'s ESP, or ``None`` when it sends one message per request."""
    esp = getattr(type(connection), "esp_name", "")
    if esp == "SendGrid":
        # anymail hands SendGrid's substitutions the keys as they are, unless a merge_field_format is set.
        field_format = getattr(connection, "merge_field_format", None)
        if field_format:
            return EspMerge(field_format, False, RESERVED_KEYS, 1000)
        return EspMerge("-{}-", True, RESERVED_KEYS, 1000)
    if esp == "Mailgun":
        return EspMerge("%recipient.{}%", False, ("%recipient.",), 1000, fields_in_headers=True)
    return None


def merge_form(compiled) -> MergeForm | None:
    """``compiled`` (an email variant) rendered with every placeholder marked, or ``None`` if it cannot be."""
    from campaigns.rendering import placeholder_context

    names = set(compiled.names) - _RENDER_OWN
    if any(not _NAME.fullmatch(name) for name in names):
        return None
    context = placeholder_context()
    context.update({name: _MARKER.format(name) for name in names})
    try:
        rendered = compiled.render(context)
    except Exception:  # a form only saves requests: without one, every email leaves on its own
        return None
    subject, html, text = (tuple(_MARKED.split(part)) for part in (rendered.subject, rendered.html, rendered.text))
    if any(name not in names for part in (subject, html, text) for name in part[1::2]):
        return None
    return MergeForm(
        subject=subject,
        html=html,
        text=text,
        html_names=frozenset(html[1::2]),
        text_names=frozenset(subject[1::2]) | frozenset(text[1::2]),
    )


def _fill(parts: tuple[str, ...], values: dict[str, str]) -> str:
    filled = list(parts)
    filled[1::2] = [values[name] for name in parts[1::2]]
    return "".join(filled)


def recipient_merge(form: MergeForm | None, *, context: dict[str, str], rendered, reserved) -> Merge | None:
    """This recipient's values for ``form``, or ``None`` when the form filled with them is not their email."""
    if form is None:
        return None
    text_values = {name: context[name] for name in form.text_names}
    html_values = {name: str(escape(context[name])) for name in form.html_names}
    if (
        _fill(form.html, html_values) != rendered.html
        or _fill(form.text, text_values) != rendered.text
        or _fill(form.subject, text_values) != rendered.subject
    ):
        return None
    if any(mark in part for mark in reserved for part in (rendered.subject, rendered.html, rendered.text)):
        return None
    return Merge(form=form, html_values=html_values, text_values=text_values)


@dataclasses.dataclass(frozen=True)
class BatchMessage:
    subject: str
    html: str
    text: str
    data: list[dict[str, str]]  # each recipient's merge data, keyed as the ESP expects
    text_fields: dict[str, str]  # what stands for each placeholder in plain text: its value or a merge field


def batch_message(form: MergeForm, merges: list[Merge], style: EspMerge) -> BatchMessage:
    """Subject, HTML and text of one batch message, and each recipient's merge data keyed as the ESP expects.

    A value every recipient shares is written into the content; a value that is the same escaped or not
    is sent once for both parts. The request carries only what differs.
    """
    html_fill: dict[str, str] = {}
    text_fill: dict[str, str] = {}
    data: list[dict[str, str]] = [{} for _ in merges]

    def per_recipient(key: str, values: list[str]) -> str:
        data_key = style.data_key(key)
        for recipient, value in zip(data, values, strict=True):
            recipient[data_key] = value
        return style.token(key)

    for name in sorted(form.html_names | form.text_names):
        html = [merge.html_values[name] for merge in merges] if name in form.html_names else None
        text = [merge.text_values[name] for merge in merges] if name in form.text_names else None
        if html is not None and len(set(html)) == 1:
            html_fill[name], html = html[0], None
        if text is not None and len(set(text)) == 1:
            text_fill[name], text = text[0], None
        if html is not None and html == text:
            html_fill[name] = text_fill[name] = per_recipient(f"tandem_b_{name}", html)
            continue
        if html is not None:
            html_fill[name] = per_recipient(f"tandem_h_{name}", html)
        if text is not None:
            text_fill[name] = per_recipient(f"tandem_t_{name}", text)
    return BatchMessage(
        subject=_fill(form.subject, text_fill),
        html=_fill(form.html, html_fill),
        text=_fill(form.text, text_fill),
        data=data,
        text_fields=text_fill,
    )
