"""Personalisation of marketers' text: a locked-down Jinja2 sandbox, checked on save, bounded at render.

Marketers write ``Hi {{ first_name }}`` and ``{% if store_name %}…{% endif %}``. Everything else is
refused before it is stored, with a message naming the line: unknown variables, attribute or item
access, method calls, loops, macros, ``include``/``import``/``extends``, arithmetic (``"a" * 10**9``),
unknown filters. The same check runs again whenever a template is compiled (``compile_text`` and
``compile_html`` are the only way to get a renderable template), so text that reached the database
some other way is refused at render too. Without loops, calls or arithmetic a render is bounded by
construction: its output is at most the source plus one value per placeholder. Behind the check, the
sandbox has no globals and no loader and refuses every call, attribute and arithmetic operator, and
the output size is checked again after rendering.

Templates compile once per variant and render many times (``compile_text``/``compile_html``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from django.conf import settings
from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import escape

MAX_SOURCE_CHARS = 100_000
MAX_OUTPUT_CHARS = 400_000
# Jinja2 parses and compiles by recursion: deeply nested conditions, brackets or long operator chains
# exhaust Python's stack. Checked on the token stream (which is read without recursion) before parsing.
MAX_NESTING = 10
MAX_TAG_TOKENS = 120

# Placeholder name -> what it means, shown to marketers.
PLACEHOLDERS: dict[str, str] = {
    "first_name": "First name (\u201cfriend\u201d when unknown)",
    "last_name": "Last name",
    "store_name": "Home store name",
    "store_address": "Home store postal address",
    "brand_name": "Brand name",
    "unsubscribe_url": "One-click unsubscribe link",
    "preferences_url": "Preference centre link",
    "survey_url": "Satisfaction survey link (0-10: would they recommend us?)",
    "points_balance": "Loyalty points balance (0 when not enrolled)",
    "tier": "Loyalty tier name (\u201cmember\u201d when none)",
    "coupon_code": "The campaign offer's coupon code (shared, or unique per message)",
}
FALLBACKS: dict[str, str] = {
    "first_name": "friend",
    "store_name": "our stores",
    "points_balance": "0",
    "tier": "member",
}

ALLOWED_FILTERS = frozenset(
    {"default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate", "e", "escape"}
)
ALLOWED_TESTS = frozenset({"defined", "undefined", "none", "string", "number"})
_ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.If,
    nodes.Filter,
    nodes.Test,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.CondExpr,
    nodes.Concat,
)
_NODE_LABELS = {
    nodes.For: "Loops ({% for %})",
    nodes.Macro: "Macros",
    nodes.CallBlock: "Call blocks",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from … import %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.Getattr: "Reading attributes (a.b)",
    nodes.Getitem: "Reading items (a[b] or a.b)",
    nodes.Call: "Calling functions or methods",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.With: "{% with %}",
}


class TemplateProblem(ValueError):
    """Template text we refuse; ``line`` is 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None):
        self.line = line
        self.detail = message
        super().__init__(f"Line {line}: {message}" if line else message)


class _LockedSandbox(ImmutableSandboxedEnvironment):
    """No globals, no loader, no calls, no arithmetic: the last line of defence behind the checker."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"+", "-"})

    def __init__(self, *, autoescape: bool):
        super().__init__(autoescape=autoescape, loader=None, auto_reload=False, cache_size=0)
        self.globals.clear()
        self.filters = {name: func for name, func in self.filters.items() if name in ALLOWED_FILTERS}
        self.tests = {name: func for name, func in self.tests.items() if name in ALLOWED_TESTS}

    def is_safe_callable(self, obj) -> bool:
        return False

    def is_safe_attribute(self, obj, attr, value) -> bool:
        return False

    def call_binop(self, context, operator, left, right):
        raise SecurityError(f"The operator {operator!r} is not available in messages.")

    def call_unop(self, context, operator, arg):
        raise SecurityError(f"The operator {operator!r} is not available in messages.")


_html_env = _LockedSandbox(autoescape=True)
_text_env = _LockedSandbox(autoescape=False)


def template_check(source: str, *, allowed_names: frozenset[str] | None = None) -> None:
    """Raise ``TemplateProblem`` (with the line) unless ``source`` is a template we accept."""
    if not isinstance(source, str):
        raise TemplateProblem("The text must be a string.")
    if "\x00" in source:
        raise TemplateProblem("The text contains a NUL character.")
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateProblem(f"The text is longer than {MAX_SOURCE_CHARS:,} characters.")
    names = allowed_names if allowed_names is not None else frozenset(PLACEHOLDERS)
    try:
        _check_shape(source)
        tree = _text_env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(_syntax_message(exc), line=exc.lineno) from exc
    except RecursionError as exc:  # the shape check should make this unreachable; never a 500
        raise TemplateProblem(f"The text is nested too deeply (at most {MAX_NESTING} levels).") from exc
    # Unknown placeholders first: that is the mistake marketers make, and the clearest message.
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in names:
            known = ", ".join(sorted(names))
            raise TemplateProblem(f"Unknown placeholder {{{{ {name.name} }}}}. Available: {known}.", line=name.lineno)
    _walk(tree, names)


def _check_shape(source: str) -> None:
    """Refuse conditions nested deeper than ``MAX_NESTING`` and tags longer than ``MAX_TAG_TOKENS``."""
    depth, tag_tokens, in_tag, first_in_block = 0, 0, False, False
    for line, kind, value in _text_env.lex(source):
        if kind in ("variable_begin", "block_begin"):
            in_tag, tag_tokens, first_in_block = True, 0, kind == "block_begin"
            continue
        if kind in ("variable_end", "block_end"):
            in_tag = False
            continue
        if not in_tag or kind == "whitespace":
            continue
        if first_in_block and kind == "name":
            depth += {"if": 1, "endif": -1}.get(value, 0)
            if depth > MAX_NESTING:
                raise TemplateProblem(f"Conditions are nested more than {MAX_NESTING} deep.", line=line)
        first_in_block = False
        tag_tokens += 1
        if tag_tokens > MAX_TAG_TOKENS:
            raise TemplateProblem(
                f"A placeholder or condition is too long or too deeply bracketed (more than {MAX_TAG_TOKENS} "
                "parts).",
                line=line,
            )


def _syntax_message(exc: TemplateSyntaxError) -> str:
    message = exc.message or "Syntax error."
    if "unknown tag" in message:
        return f"{message}. Only {{{{ placeholder }}}} and {{% if %}} … {{% endif %}} are available."
    return message


def _walk(node: nodes.Node, names: frozenset[str]) -> None:
    line = getattr(node, "lineno", None)
    if not isinstance(node, _ALLOWED_NODES):
        label = next((text for kind, text in _NODE_LABELS.items() if isinstance(node, kind)), None)
        label = label or f"This construct ({type(node).__name__})"
        raise TemplateProblem(f"{label} is not allowed in messages.", line=line)
    if isinstance(node, nodes.Name):
        if node.ctx != "load":
            raise TemplateProblem("Assigning variables is not allowed in messages.", line=line)
        if node.name not in names:
            known = ", ".join(sorted(names))
            raise TemplateProblem(f"Unknown placeholder {{{{ {node.name} }}}}. Available: {known}.", line=line)
    if isinstance(node, nodes.Filter):
        if node.name not in ALLOWED_FILTERS:
            raise TemplateProblem(f"The filter |{node.name} is not available in messages.", line=line)
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise TemplateProblem("Filters take plain values only.", line=line)
        for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
            if not isinstance(arg, nodes.Const):
                raise TemplateProblem("Filters take plain values only.", line=line)
            if node.name == "truncate" and isinstance(arg.value, int) and not 0 <= arg.value <= 10_000:
                raise TemplateProblem("truncate takes a length between 0 and 10,000.", line=line)
        if node.node is None:
            raise TemplateProblem("{% filter %} blocks are not allowed in messages.", line=line)
    if isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
        raise TemplateProblem(f"The test 'is {node.name}' is not available in messages.", line=line)
    if isinstance(node, nodes.Const) and isinstance(node.value, str) and len(node.value) > 1000:
        raise TemplateProblem("A quoted value is longer than 1,000 characters.", line=line)
    for child in node.iter_child_nodes():
        _walk(child, names)


def unconditional_text(source: str) -> str:
    """The literal text of ``source`` that every render contains: outside ``{% if %}`` blocks.

    A placeholder stands as a NUL, so a phrase is never found across a value that could change it.
    """
    tree = _text_env.parse(source)
    parts: list[str] = []
    for node in tree.body:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                parts.append(child.data if isinstance(child, nodes.TemplateData) else "\x00")
        else:
            parts.append("\x00")
    return "".join(parts)


@dataclasses.dataclass(frozen=True)
class CompiledTemplate:
    """A checked, compiled template; ``render`` is cheap and bounded."""

    source: str
    template: object
    # The placeholders the template reads: a sender computes only these (a link costs a signature).
    names: frozenset[str] = frozenset(PLACEHOLDERS)
    # A template of text and bare ``{{ name }}`` only: its literal text and names alternating, which
    # render by joining (what Jinja's compiled code does for such a template, without its context).
    parts: tuple[str, ...] | None = None
    escaped: bool = False

    def render(self, context: Mapping[str, object]) -> str:
        if self.parts is not None:
            try:
                output = self._join(context)
            except KeyError:  # a name the context lacks: Jinja renders it empty
                output = self.render_compiled(context)
        else:
            output = self.render_compiled(context)
        if len(output) > MAX_OUTPUT_CHARS:
            raise RenderError(f"The message grew beyond {MAX_OUTPUT_CHARS:,} characters.")
        return output

    def _join(self, context: Mapping[str, object]) -> str:
        filled = list(self.parts)
        if self.escaped:
            filled[1::2] = [escape(str(context[name])) for name in self.parts[1::2]]
        else:
            filled[1::2] = [str(context[name]) for name in self.parts[1::2]]
        return "".join(filled)

    def render_compiled(self, context: Mapping[str, object]) -> str:
        """Through Jinja's compiled template, whatever the template's shape."""
        # Checked templates have no loops, calls or arithmetic, so output is at most the source plus
        # one value per placeholder: joining in one go is safe, and the size is checked after.
        template = self.template
        try:
            return "".join(template.root_render_func(template.new_context(dict(context))))
        except Exception as exc:  # anything the sandbox refuses or a template error
            raise RenderError(f"The message could not be rendered: {exc}") from exc


def _plain_parts(env: _LockedSandbox, source: str) -> tuple[str, ...] | None:
    """Literal text and names alternating (starting and ending with text), or ``None`` when the template
    holds anything but text and bare ``{{ name }}`` outputs (a filter, a condition, a literal…)."""
    parts = [""]
    for node in env.parse(source).body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts[-1] += child.data
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                parts.extend((child.name, ""))
            else:
                return None
    return tuple(parts)


class RenderError(RuntimeError):
    """A template that passed its check failed at render; the message must not be sent."""


def compile_text(source: str, *, allowed_names: frozenset[str] | None = None) -> CompiledTemplate:
    """Check and compile plain text (subject, SMS, push): no escaping."""
    template_check(source, allowed_names=allowed_names)
    return CompiledTemplate(
        source=source,
        template=_from_string(_text_env, source),
        names=_names(source),
        parts=_plain_parts(_text_env, source),
    )


def compile_html(source: str, *, allowed_names: frozenset[str] | None = None) -> CompiledTemplate:
    """Check and compile HTML: every placeholder value is HTML-escaped."""
    template_check(source, allowed_names=allowed_names)
    return CompiledTemplate(
        source=source,
        template=_from_string(_html_env, source),
        names=_names(source),
        parts=_plain_parts(_html_env, source),
        escaped=True,
    )


def _names(source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_text_env.parse(source)))


def _from_string(env: _LockedSandbox, source: str):
    try:
        return env.from_string(source)
    except (RecursionError, SyntaxError) as exc:  # Python's own nesting limits while compiling
        raise TemplateProblem(f"The text is nested too deeply (at most {MAX_NESTING} levels).") from exc


def placeholder_context(*, customer=None, links: Mapping[str, str] | None = None, extra=None) -> dict[str, str]:
    """The values a message sees for one customer, with fallbacks for whatever is missing.

    Only plain strings go in: templates never see a model instance, so there is nothing to traverse.
    """
    brand = settings.TANDEM["BRAND_NAME"]
    store = getattr(customer, "home_store", None) if customer is not None else None
    values = {
        "first_name": (getattr(customer, "first_name", "") or "").strip(),
        "last_name": (getattr(customer, "last_name", "") or "").strip(),
        "store_name": store.name if store is not None else "",
        "store_address": store.postal_address if store is not None else "",
        "brand_name": brand,
        "unsubscribe_url": "",
        "preferences_url": "",
        "survey_url": "",
        "points_balance": "",
        "tier": "",
        "coupon_code": "",
    }
    values.update(links or {})
    values.update(extra or {})
    for name, fallback in FALLBACKS.items():
        if not values.get(name):
            values[name] = fallback
    return {name: str(value) for name, value in values.items()}
