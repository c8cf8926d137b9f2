"""The satisfaction survey link: its own purpose, GET changes nothing, POST records, edit window, escaping."""

from datetime import timedelta
from urllib.parse import urlparse

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from campaigns.composer import MARKETER_NAMES
from campaigns.links import message_links
from campaigns.rendering import PLACEHOLDERS, compile_text
from customers.exceptions import InvalidToken
from customers.models import SurveyResponse
from customers.services.preferences import preference_link_read
from customers.services.profiles import customer_erase
from customers.services.surveys import survey_link_read
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _token(url: str) -> str:
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture
def customer():
    return CustomerFactory(first_name="Ana")


@pytest.fixture
def survey_path(customer):
    links = message_links(customer=customer, channel="email", source="delivery:123", cause="campaign:4")
    return urlparse(links["survey_url"]).path


def test_a_message_can_carry_a_survey_link_as_a_placeholder():
    assert "survey_url" in PLACEHOLDERS
    assert "survey_url" in MARKETER_NAMES
    compile_text("Tell us: {{ survey_url }}", allowed_names=MARKETER_NAMES)


def test_the_survey_token_opens_only_the_survey_and_no_other_token_opens_it(customer):
    links = message_links(customer=customer, channel="email", source="delivery:123", cause="campaign:4")

    link = survey_link_read(token=_token(links["survey_url"]))

    assert (link.customer, link.source) == (customer, "campaign:4 delivery:123")
    with pytest.raises(InvalidToken):
        survey_link_read(token=_token(links["preferences_url"]))
    with pytest.raises(InvalidToken):
        survey_link_read(token=_token(links["unsubscribe_url"]))
    with pytest.raises(InvalidToken):
        preference_link_read(token=_token(links["survey_url"]))
    assert Client().get(urlparse(links["preferences_url"]).path.replace("/p/", "/s/")).status_code == 404


def test_get_shows_the_question_and_changes_nothing(survey_path):
    response = Client().get(survey_path)

    assert response.status_code == 200
    assert b'name="score"' in response.content
    assert b'value="10"' in response.content
    assert not SurveyResponse.objects.exists()


def test_post_records_the_answer_against_what_carried_the_link(customer, survey_path):
    response = Client(enforce_csrf_checks=True).post(survey_path, {"score": "9", "comment": "Lovely staff"})

    assert response.status_code == 200
    assert b'data-testid="thanks"' in response.content
    answer = SurveyResponse.objects.get()
    assert (answer.customer, answer.score, answer.comment, answer.source) == (
        customer,
        9,
        "Lovely staff",
        "campaign:4 delivery:123",
    )


@pytest.mark.parametrize("score", ["11", "-1", "", "7.5", "ten"])
def test_a_score_outside_0_to_10_is_refused_and_nothing_recorded(survey_path, score):
    response = Client().post(survey_path, {"score": score})

    assert response.status_code == 400
    assert not SurveyResponse.objects.exists()


def test_answering_again_within_seven_days_updates_the_one_answer_and_later_is_refused(survey_path):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        Client().post(survey_path, {"score": "3"})
    with time_machine.travel(start + timedelta(days=6), tick=False):
        response = Client().post(survey_path, {"score": "8", "comment": "Better now"})
    assert response.status_code == 200
    answer = SurveyResponse.objects.get()
    assert (answer.score, answer.comment, answer.answered_at) == (8, "Better now", start + timedelta(days=6))

    with time_machine.travel(start + timedelta(days=8), tick=False):
        response = Client().post(survey_path, {"score": "10"})

    assert response.status_code == 400
    assert SurveyResponse.objects.get().score == 8


def test_the_comment_is_shown_escaped_and_stored_as_plain_text(survey_path):
    Client().post(survey_path, {"score": "5", "comment": "<script>alert(1)</script>\x07"})

    response = Client().get(survey_path)

    assert SurveyResponse.objects.get().comment == "<script>alert(1)</script>"
    assert b"<script>alert(1)" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


def test_a_too_long_comment_is_refused(survey_path):
    response = Client().post(survey_path, {"score": "5", "comment": "x" * 1001})

    assert response.status_code == 400
    assert not SurveyResponse.objects.exists()


def test_bad_and_erased_links_answer_the_same_generic_page(customer, survey_path):
    assert Client().get(survey_path.replace("/s/", "/s/x")).status_code == 404
    Client().post(survey_path, {"score": "2", "comment": "Call me, Ana Smith"})

    customer_erase(customer=customer, user=None)

    assert Client().get(survey_path).status_code == 404
    assert SurveyResponse.objects.get().comment == ""


def test_an_old_survey_link_says_the_survey_has_closed_and_records_nothing(survey_path):
    with time_machine.travel(timezone.now() + timedelta(days=61)):
        response = Client().post(survey_path, {"score": "10"})

    assert response.status_code == 410
    assert not SurveyResponse.objects.exists()
