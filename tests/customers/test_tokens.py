"""Signed single-purpose tokens: a token works for its purpose only, and every bad one looks the same."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from customers.exceptions import InvalidToken
from customers.tokens import token_make, token_read

PAYLOAD = {"c": "8d4f6b1e-0000-4000-8000-000000000000", "g": 7}


def test_a_token_reads_back_for_its_purpose():
    assert (
        token_read(purpose="consent-confirm", token=token_make(purpose="consent-confirm", payload=PAYLOAD)) == PAYLOAD
    )


@pytest.mark.parametrize("other", ["unsubscribe", "preferences", "consent-confirm ", "CONSENT-CONFIRM", ""])
def test_a_token_fails_for_any_other_purpose(other):
    token = token_make(purpose="consent-confirm", payload=PAYLOAD)
    with pytest.raises(InvalidToken, match="not valid"):
        token_read(purpose=other, token=token)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "no-colons",
        "a:b:c",
        "x" * 1001,
        signing.dumps(PAYLOAD, salt="someone-else"),
        signing.dumps(PAYLOAD),  # unsalted
    ],
)
def test_bad_tokens_all_fail_the_same_way(token):
    with pytest.raises(InvalidToken) as excinfo:
        token_read(purpose="consent-confirm", token=token)
    assert str(excinfo.value) == "This link is not valid."


def test_a_signed_non_object_payload_is_refused():
    token = signing.dumps([1, 2], salt="tandem.token.consent-confirm")
    with pytest.raises(InvalidToken):
        token_read(purpose="consent-confirm", token=token)


def test_max_age_is_enforced():
    token = token_make(purpose="p", payload=PAYLOAD)
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        with pytest.raises(InvalidToken, match="expired"):
            token_read(purpose="p", token=token, max_age_seconds=60)
        assert token_read(purpose="p", token=token) == PAYLOAD  # no max age: never expires


@pytest.mark.parametrize("payload", [PAYLOAD, {"c": "x", "s": "campaign:4 delivery:9 \u00e9\u2603"}, {"preview": True}])
def test_a_token_is_what_django_signing_makes(payload, settings):
    with time_machine.travel(timezone.now(), tick=False):
        assert token_make(purpose="unsubscribe", payload=payload) == signing.dumps(
            payload, salt="tandem.token.unsubscribe", compress=False
        )
        settings.SECRET_KEY = "another secret " * 4  # the key follows the setting
        assert token_make(purpose="unsubscribe", payload=payload) == signing.dumps(
            payload, salt="tandem.token.unsubscribe", compress=False
        )
