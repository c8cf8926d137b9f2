"""The till answers first: every submit's result sits above the forms, announced; new cards show a QR code."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.template import Context, Template
from django.urls import reverse

from loyalty.capture import enrol_offer_token
from loyalty.cards import card_number_generate, card_qr_svg
from loyalty.exceptions import InvalidCardNumber
from loyalty.models import LoyaltyAccount
from tests.factories import CustomerFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def till(client, clerk):
    client.login(username=clerk.username, password=PASSWORD)
    return client


def _answer(html: str) -> str:
    """The answer box's opening tag and text: the first element marked ``data-answer``."""
    start = html.rindex("<", 0, html.index("data-answer"))
    return html[start : html.index("</div>", start)]


def _before_forms(html: str, text: str) -> bool:
    first_form = html.find('<form method="post"', html.index("<main>"))
    return html.index(text) < first_form


# --- answers at the top -------------------------------------------------------------------------


def test_a_refused_coupon_is_answered_above_every_form_as_an_alert(till, account):
    response = till.post(
        reverse("loyalty:coupon-check", args=[account.card_number]), {"code": "NOPE", "order_reference": "R-1"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    answer = _answer(html)
    assert 'role="alert"' in answer
    assert 'aria-live="assertive"' in answer
    assert "answer-bad" in answer
    assert "Code not accepted" in answer
    assert _before_forms(html, "Code not accepted")
    assert html.count('role="alert"') == 1  # one announcement, not one per error list


def test_a_recorded_purchase_is_answered_at_the_top_as_a_status(till, account):
    response = till.post(
        reverse("loyalty:purchase", args=[account.card_number]), {"receipt": "R-9", "amount": "10"}, follow=True
    )
    html = response.content.decode()
    answer = _answer(html)
    assert 'role="status"' in answer
    assert "answer-ok" in answer
    assert "Receipt R-9: 10 points earned" in answer
    assert _before_forms(html, "Receipt R-9")


@pytest.mark.parametrize(
    ("url_name", "data", "title"),
    [
        ("loyalty:lookup", {"query": "nobody@example.com"}, "Not found:"),
        ("loyalty:refund", {"receipt": "NO-SUCH"}, "Not found:"),
        ("loyalty:refund-confirm", {"receipt": "NO-SUCH"}, "Not refunded:"),
    ],
)
def test_lookup_and_refund_refusals_come_first(till, programme, url_name, data, title):
    html = till.post(reverse(url_name), data).content.decode()
    assert title in _answer(html)
    assert 'role="alert"' in _answer(html)
    assert _before_forms(html, title)


def test_points_refusal_comes_first(till, account):
    html = till.post(
        reverse("loyalty:points", args=[account.card_number]), {"points": "999", "order_reference": "R", "nonce": "n"}
    ).content.decode()
    assert "Points not spent:" in _answer(html)
    assert _before_forms(html, "Points not spent:")


# --- the capture and "Saved" pages lead to loyalty ----------------------------------------------


def test_capture_and_saved_pages_link_to_loyalty_and_refunds(till, programme, disclosures):
    capture_page = till.get(reverse("till:capture")).content.decode()
    for url in (reverse("loyalty:lookup"), reverse("loyalty:refund")):
        assert f'href="{url}"' in capture_page
    till.post(reverse("till:capture"), {"email": "lin@example.com", "first_name": "Lin"})
    done = till.get(reverse("till:capture-done")).content.decode()
    for url in (reverse("loyalty:lookup"), reverse("loyalty:refund"), reverse("loyalty:enrol")):
        assert url in done
    assert "Enrol in Tandem Rewards" in done


def test_a_new_member_sees_their_card_large_with_a_qr_code_and_a_purchase_link(till, programme, disclosures):
    till.post(reverse("till:capture"), {"email": "mo@example.com", "first_name": "Mo", "loyalty_enrol": "on"})
    done = till.get(reverse("till:capture-done")).content.decode()
    account = LoyaltyAccount.objects.get(customer__email="mo@example.com")
    grouped = " ".join(re.findall(r"\d{4}", account.card_number))
    assert f'data-testid="card-number-large">{grouped}</p>' in done
    assert f"<title>Card {account.card_number}</title>" in done
    assert reverse("loyalty:account", args=[account.card_number]) in done


def test_enrolling_from_the_saved_page_opens_the_new_card(till, programme, disclosures):
    till.post(reverse("till:capture"), {"email": "kai@example.com", "first_name": "Kai"})
    done = till.get(reverse("till:capture-done")).content.decode()
    token = re.search(r'name="offer" value="([^"]+)"', done).group(1)

    response = till.post(reverse("loyalty:enrol"), {"offer": token}, follow=True)
    html = response.content.decode()
    account = LoyaltyAccount.objects.get(customer__email="kai@example.com")
    assert response.redirect_chain[-1][0].endswith(f"/card/{account.card_number}/?card=new")
    assert "Enrolled in Tandem Rewards" in _answer(html)
    assert f"<title>Card {account.card_number}</title>" in html
    # Posting the offer again changes nothing.
    till.post(reverse("loyalty:enrol"), {"offer": token})
    assert LoyaltyAccount.objects.filter(customer__email="kai@example.com").count() == 1


@pytest.mark.parametrize("offer", ["", "forged", enrol_offer_token.__name__])
def test_a_forged_enrolment_offer_enrols_nobody(till, programme, offer):
    CustomerFactory(email="x@example.com")
    html = till.post(reverse("loyalty:enrol"), {"offer": offer}, follow=True).content.decode()
    assert "expired" in _answer(html)
    assert not LoyaltyAccount.objects.exists()


# --- the QR code --------------------------------------------------------------------------------


def test_the_qr_code_is_one_valid_svg_element_with_only_the_card_number():
    number = card_number_generate()
    svg = card_qr_svg(number)
    root = ET.fromstring(svg)  # noqa: S314 - our own output; well-formed XML is safe to place inline
    assert root.tag == "svg"
    assert root.get("viewBox")
    assert [child.tag for child in root].count("title") == 1
    assert root.find("title").text == f"Card {number}"
    assert re.fullmatch(r"[\w\s<>=\"/.#:()\-,]*", svg)  # no script, no entity, no foreign markup
    assert "<script" not in svg
    assert "href" not in svg


@pytest.mark.parametrize(
    "value", ["<script>alert(1)</script>", "1234567890123456", "12345678901234520", "", None, '" onload=x']
)
def test_anything_but_a_card_number_draws_no_code(value):
    with pytest.raises(InvalidCardNumber):
        card_qr_svg(value or "")
    html = Template("{% load loyalty_cards %}[{{ value|card_qr }}][{{ value|card_grouped }}]").render(
        Context({"value": value})
    )
    assert "<svg" not in html
    assert "<script" not in html
