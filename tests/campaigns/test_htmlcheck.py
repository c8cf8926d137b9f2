"""What in a marketing body would hide the layout's footer, read as an HTML tokenizer reads it."""

import pytest

from campaigns.htmlcheck import html_problems, template_html_problems


@pytest.mark.parametrize(
    "body",
    [
        "<p>Hi</p>",
        "<p>Hi <!-- note --> there</p>",
        "<!---->",
        "<!-->",
        "<textarea>x</textarea><title>t</title>",
        "<TEXTAREA>x</textarea >",
        "<script>var a = '</div>';</script>",
        "<style>p { color: red }</style><p>x</p>",
        '<img src="a.png" alt="1 > 0">',
        "<a title='it\"s'>x</a>",
        "<p>1 < 2 and 3 > 2</p>",
        "<div><div>nested</div>",  # left open: the layout's </div> closes it
        "<template><p>x</p></template>",
        "<select><option>a</option></select>",
        "<!DOCTYPE html><br/>",
        "<p>x</p></>",
    ],
)
def test_bodies_that_leave_the_footer_visible(body):
    assert html_problems(body) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<p>Hi</p><!-- never closed", "comment"),
        ("<p>Hi</p><!-- closed -- but not -- >", "comment"),
        ("<template><p>x", "<template>"),
        ("<title>x", "<title>"),
        ("<textarea>x", "<textarea>"),
        ("<textarea/>x", "<textarea>"),  # a slash does not close it
        ("<textarea>x</textareax>", "<textarea>"),
        ("<script>x", "<script>"),
        ("<style>x", "<style>"),
        ("<noscript>x", "<noscript>"),
        ("<iframe>x", "<iframe>"),
        ("<xmp>x", "<xmp>"),
        ("<select><option>x", "<select>"),
        ("<object data='x.svg'>", "<object>"),
        ("<plaintext>", "<plaintext>"),
        ('<a href="https://x.example>Shop', "<a"),
        ("<a href='x>Shop", "<a"),
        ("<p", "<p"),
        ("<!DOCTYPE", "never closed"),
        ("<![CDATA[ x", "never closed"),
        ("</div><div hidden>", "</div>"),
        ("<p>x</p></body>", "</body>"),
    ],
)
def test_bodies_that_would_hide_the_footer(body, problem):
    problems = html_problems(body)
    assert problems
    assert problem in " ".join(problems)


def test_placeholders_read_as_text_and_control_tags_as_nothing():
    assert template_html_problems('<a href="{{ unsubscribe_url }}">{{ first_name }}</a>') == []
    assert template_html_problems("{% if first_name %}<!--{% endif %}") != []
    assert template_html_problems("{{ '<!--' }}") == []  # a value is escaped at render, never markup
