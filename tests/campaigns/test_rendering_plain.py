"""Templates of text and bare ``{{ name }}`` render by joining; the result must be Jinja's, byte for byte."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.rendering import compile_html, compile_text

NAMES = ["first_name", "store_name", "coupon_code"]
TEXT = st.text(alphabet=st.sampled_from(list("ab <>&\"' \n\r\t{}%#é😀-")), max_size=12)
VALUES = st.text(alphabet=st.sampled_from(list("ab <>&\"'\n\r é😀{}%")), max_size=10)


@st.composite
def plain_sources(draw):
    pieces = []
    for _ in range(draw(st.integers(0, 5))):
        pieces.append(draw(TEXT).replace("{", "(").replace("}", ")").replace("%", "p").replace("#", "h"))
        space = draw(st.sampled_from(["", " ", "  "]))
        trim = draw(st.sampled_from([("{{", "}}"), ("{{-", "}}"), ("{{", "-}}"), ("{{-", "-}}")]))
        pieces.append(f"{trim[0]}{space}{draw(st.sampled_from(NAMES))}{space}{trim[1]}")
    pieces.append(draw(st.sampled_from(["", "\n", "\r\n", "end\n\n"])))
    return "".join(pieces)


@settings(max_examples=300, deadline=None)
@given(source=plain_sources(), values=st.fixed_dictionaries(dict.fromkeys(NAMES, VALUES)))
@pytest.mark.parametrize("compile_", [compile_html, compile_text])
def test_joining_a_plain_template_gives_exactly_what_jinja_renders(compile_, source, values):
    template = compile_(source)
    assert template.parts is not None
    assert template.render(values) == template.render_compiled(values)


@pytest.mark.parametrize(
    "source",
    [
        "Hi {{ first_name|upper }}",
        "{% if first_name %}Hi {{ first_name }}{% endif %}",
        "Hi {{ 'there' }}",
    ],
)
def test_anything_but_text_and_names_renders_through_jinja(source):
    assert compile_html(source).parts is None


def test_a_comment_leaves_a_plain_template_plain():
    template = compile_html("{# note #}Hi {{ first_name }}")
    assert template.parts == ("Hi ", "first_name", "")
    assert template.render({"first_name": "<b>"}) == "Hi &lt;b&gt;"


def test_a_name_missing_from_the_context_renders_empty_as_jinja_does():
    template = compile_text("Hi {{ first_name }}!")
    assert template.render({}) == "Hi !"
