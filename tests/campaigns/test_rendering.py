"""Personalisation: the payloads of reliability.md are refused on save and harmless at render."""

import pytest
from django.conf import settings
from jinja2 import TemplateSyntaxError

from campaigns import rendering
from campaigns.rendering import (
    RenderError,
    TemplateProblem,
    compile_html,
    compile_text,
    placeholder_context,
    template_check,
)

PAYLOADS = [
    "{{ settings.SECRET_KEY }}",
    "{{ settings }}",
    "{% load static %}{% static 'x' %}",
    "{% load log %}",
    '{% include "/etc/passwd" %}',
    '{% include "../../../../etc/passwd" %}',
    '{% import "x.html" as x %}',
    '{% extends "/etc/passwd" %}',
    '{% from "x" import y %}',
    "{{ first_name.__class__.__mro__[1].__subclasses__() }}",
    "{{ first_name.__class__ }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ first_name|attr('__class__') }}",
    "{{ first_name.upper() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ config }}",
    "{{ request.environ }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}y{% endfor %}{% endfor %}",
    "{{ 'x' * 1000000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% set x = 'a' %}{{ x }}",
    "{{ first_name|format('%s') }}",
    "{{ first_name['__class__'] }}",
    "{% raw %}ok{% endraw %}{{ unknown_thing }}",
    "{% debug %}",
    "{{ range(5) }}",
    "{{ namespace() }}",
    "{{ dict(a=1) }}",
    "{% if true %}{% for x in [1] %}{% endfor %}{% endif %}",
    "{{ first_name|truncate(10000000) }}",
    "{{ first_name|default(first_name|default(x)) }}",
    "{% filter upper %}x{% endfilter %}",
    "{% with a = 1 %}{{ a }}{% endwith %}",
    "hi\x00there",
    "{{ first_name",
    "{% if %}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_is_refused_on_save(payload):
    with pytest.raises(TemplateProblem) as caught:
        template_check(payload)
    assert str(caught.value)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_is_harmless_at_render(payload):
    """Even bypassing the check (text written straight to the database), the sandbox holds.

    The payload either fails to compile (a syntax error), is refused by the sandbox at render
    (``RenderError``), or renders to bounded output that leaks nothing; any other exception fails.
    """
    env = rendering._text_env
    try:
        template = env.from_string(payload)
    except TemplateSyntaxError:
        return
    try:
        output = rendering.CompiledTemplate(source=payload, template=template).render(
            placeholder_context(links={"unsubscribe_url": "https://x.example/u"})
        )
    except RenderError as exc:
        output = str(exc)
    assert settings.SECRET_KEY not in output
    assert "root:" not in output
    assert "<class" not in output
    assert len(output) <= rendering.MAX_OUTPUT_CHARS


@pytest.mark.parametrize("payload", PAYLOADS)
def test_compile_always_checks_so_render_never_sees_a_payload(payload):
    with pytest.raises(TemplateProblem):
        compile_text(payload)
    with pytest.raises(TemplateProblem):
        compile_html(payload)


def test_refusal_points_at_the_line():
    with pytest.raises(TemplateProblem) as caught:
        template_check("Hello {{ first_name }}\nthanks\n{{ settings.SECRET_KEY }}")
    assert caught.value.line == 3
    assert str(caught.value).startswith("Line 3:")
    assert "settings" in str(caught.value)


def test_unknown_variable_is_flagged_with_the_known_ones():
    with pytest.raises(TemplateProblem) as caught:
        template_check("Hi {{ frist_name }}")
    assert "frist_name" in str(caught.value)
    assert "first_name" in str(caught.value)


def test_load_tag_is_refused_with_line():
    with pytest.raises(TemplateProblem) as caught:
        template_check("a\n{% load static %}")
    assert caught.value.line == 2


def test_allowed_constructs_render():
    template = compile_text(
        "Hi {{ first_name|title }}{% if store_name != 'our stores' %}, see you at {{ store_name }}{% endif %}!"
    )
    assert template.render(placeholder_context()) == "Hi Friend!"


def test_missing_first_name_reads_friend():
    class Nobody:
        first_name = ""
        last_name = ""
        home_store = None

    context = placeholder_context(customer=Nobody())
    assert compile_text("Hi {{ first_name }}").render(context) == "Hi friend"


def test_html_escapes_customer_values():
    class Mallory:
        first_name = "<script>alert(1)</script>"
        last_name = ""
        home_store = None

    html = compile_html("<p>Hi {{ first_name }}</p>").render(placeholder_context(customer=Mallory()))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_output_is_bounded(monkeypatch):
    monkeypatch.setattr(rendering, "MAX_OUTPUT_CHARS", 50)
    with pytest.raises(RenderError):
        compile_text("x" * 60).render(placeholder_context())


def test_compiled_template_is_reused_for_many_renders():
    template = compile_text("Hi {{ first_name }}")
    outputs = {template.render({**placeholder_context(), "first_name": name}) for name in ("Ann", "Bo")}
    assert outputs == {"Hi Ann", "Hi Bo"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% if first_name %}" * 11 + "x" + "{% endif %}" * 11, "nested more than 10 deep"),
        ("{% if first_name %}" * 2000 + "x" + "{% endif %}" * 2000, "nested more than 10 deep"),
        ("{{ " + "(" * 1000 + "first_name" + ")" * 1000 + " }}", "too deeply bracketed"),
        ("{{ first_name" + "|default('x')" * 500 + " }}", "too long"),
        ("{% if " + " and ".join(["first_name"] * 3000) + " %}x{% endif %}", "too long"),
    ],
)
def test_deep_nesting_is_refused_with_a_message_not_a_crash(source, message):
    with pytest.raises(TemplateProblem, match=message):
        template_check(source)
    with pytest.raises(TemplateProblem, match=message):
        compile_html(source)


def test_nesting_up_to_the_bound_is_accepted():
    source = "{% if first_name %}" * 10 + "{{ first_name }}" + "{% endif %}" * 10
    assert compile_text(source).render(placeholder_context()) == "friend"
