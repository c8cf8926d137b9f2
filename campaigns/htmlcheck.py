"""Marketing HTML that would swallow what follows it: the brand layout's footer (unsubscribe, postal address).

The body is pasted into the layout before the footer. An HTML parser reads everything after an
unclosed comment, ``<title>``, ``<textarea>``, ``<script>``, ``<style>`` (and the other raw-text
elements) as text or hidden content, and the layout's closing ``</div>`` cannot reach out of an open
``<template>``, ``<select>``, ``<object>`` or ``<applet>``; a tag left unterminated (``<a href="…``)
takes the rest as an attribute. A body that closes containers it did not open (``</div>``) can
move the footer into one of its own. Each of these is refused, at authoring and again at render.

This follows the HTML tokenizer's states for what matters here; it is not a full HTML parser.
"""

from __future__ import annotations

import re

# Their content is text up to the matching end tag (RAWTEXT / RCDATA / script data in the HTML spec).
TEXT_ELEMENTS = frozenset(
    {"script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "textarea", "title"}
)
# Scope boundaries the layout's ``</div>`` does not cross, or select's content model.
TRAPPING_ELEMENTS = frozenset({"template", "select", "object", "applet"})
# What the brand layout wraps the body in: closing one the body did not open moves the footer.
LAYOUT_CONTAINERS = frozenset({"div", "body", "html"})

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_TOKEN = re.compile(
    r"<(?:(?P<comment>!--)|(?P<bogus>[!?]|/(?![A-Za-z>]))|(?P<end>/)?(?P<name>[A-Za-z][^\s/>]*))"
)
_SPACE = re.compile(r"[\s/]*")
_ATTR_NAME = re.compile(r"[^\s/>=][^\s/>=]*|=[^\s/>=]*")
_UNQUOTED = re.compile(r"[^\s>]*")
# A well-formed run of attributes up to ">": where it matches, the tokenizer ends the tag at the same
# place, and the attribute-by-attribute walk is needed only for the rest.
_PLAIN_ATTRIBUTES = re.compile(
    r"""(?>\s+[^\s/>="'<]+(?>\s*=\s*(?>"[^"]*"|'[^']*'|[^\s>"'=<`]+))?)*\s*/?>"""
)
_TEXT_END = {name: re.compile(rf"</{name}[\s/>]", re.I) for name in TEXT_ELEMENTS}


def _tag_end(source: str, pos: int) -> int:
    """Index just after the ``>`` closing the tag whose attributes start at ``pos``; -1 when it never closes."""
    plain = _PLAIN_ATTRIBUTES.match(source, pos)
    if plain is not None:
        return plain.end()
    length = len(source)
    while True:
        pos = _SPACE.match(source, pos).end()
        if pos >= length:
            return -1
        if source[pos] == ">":
            return pos + 1
        pos = _ATTR_NAME.match(source, pos).end()
        after = _SPACE.match(source, pos).end() if pos < length and source[pos].isspace() else pos
        if after < length and source[after] == "=":
            pos = after + 1
            while pos < length and source[pos].isspace():
                pos += 1
            if pos < length and source[pos] in "\"'":
                close = source.find(source[pos], pos + 1)
                if close == -1:
                    return -1
                pos = close + 1
            else:
                pos = _UNQUOTED.match(source, pos).end()


def html_problems(source: str, *, fragment: bool = True) -> list[str]:
    """What in ``source`` would hide content after it; empty when it closes everything it opens.

    ``fragment``: ``source`` is a body pasted into the layout, so closing a layout container is refused too.
    """
    problems: list[str] = []
    stack: list[str] = []  # open elements that matter: trapping ones and layout containers
    pos = 0
    while (token := _TOKEN.search(source, pos)) is not None:
        start = token.start()
        if token.group("comment"):
            end = source.find("-->", start + 2)  # from "<!" so that "<!-->" and "<!--->" end themselves
            if end == -1:
                problems.append("A comment (<!--) is never closed with -->.")
                return problems
            pos = end + 3
            continue
        if token.group("bogus"):
            # <!DOCTYPE>, <![CDATA[, <?…, and "</" not followed by a letter: bogus comments up to ">".
            end = source.find(">", start)
            if end == -1:
                problems.append(f"{source[start : start + 10]!r}… is never closed with >.")
                return problems
            pos = end + 1
            continue
        name = token.group("name").lower()
        pos = _tag_end(source, token.end())
        if pos == -1:
            problems.append(f"The tag <{token.group(0)[1:]} is never closed with >.")
            return problems
        if token.group("end"):
            if name in stack:
                while stack.pop() != name:
                    pass
            elif fragment and name in LAYOUT_CONTAINERS:
                problems.append(f"</{name}> closes an element the message did not open.")
        elif name in TEXT_ELEMENTS:
            # A self-closing slash does not end these: their content runs to the end tag.
            closing = _TEXT_END[name].search(source, pos)
            if closing is None:
                problems.append(f"<{name}> is never closed with </{name}>.")
                return problems
            pos = closing.start()
        elif name in TRAPPING_ELEMENTS or name in LAYOUT_CONTAINERS:
            stack.append(name)  # "<div/>" opens a div all the same
        elif name == "plaintext":
            problems.append("<plaintext> turns the rest of the email into text.")
            return problems
    problems.extend(f"<{name}> is never closed with </{name}>." for name in stack if name in TRAPPING_ELEMENTS)
    return problems


def template_html_problems(source: str) -> list[str]:
    """``html_problems`` of a marketer's template: placeholders read as text, ``{% %}`` tags as nothing.

    Every branch of an ``{% if %}`` is read in sequence; a text that balances only that way is caught
    per recipient at render.
    """
    return html_problems(_JINJA.sub(lambda match: "x" if match.group(0).startswith("{{") else "", source))


def problems_message(problems: list[str]) -> str:
    return " ".join(problems) + " The footer (unsubscribe link, postal address) would be hidden."
