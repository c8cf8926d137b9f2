"""The short satisfaction survey (NPS) a message can carry: a signed link, one answer per source.

The link's token has a purpose of its own ("survey"), so neither an unsubscribe nor a preference
link opens it, and a survey link changes no preference. It names the customer and what carried it
(``campaign:4 delivery:123``, as data: customers never imports campaigns). Answering again from the
same link within ``SURVEY_EDIT_DAYS`` of the first answer replaces it; later it is refused.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta

from django.utils import timezone

from customers.exceptions import CustomerError, InvalidToken
from customers.lock_objects import customers_lock
from customers.models import Customer, SurveyResponse
from customers.tokens import token_make, token_read
from customers.transactions import atomic_retry

SURVEY_PURPOSE = "survey"
#: how long a survey link opens at all
SURVEY_LINK_MAX_AGE_DAYS = 60
#: how long after the first answer a customer may change it
SURVEY_EDIT_DAYS = 7
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class SurveyAnswerRefused(CustomerError, ValueError):
    """An answer outside 0-10, or a change to an answer older than the edit window."""


@dataclasses.dataclass(frozen=True)
class SurveyLink:
    customer: Customer
    source: str


def survey_token_make(*, customer: Customer, source: str = "") -> str:
    """A signed survey link for ``customer``; ``source`` names what carried it (``campaign:4 delivery:9``)."""
    return token_make(purpose=SURVEY_PURPOSE, payload={"c": str(customer.public_id), "s": source[:200]})


def survey_link_read(*, token: str) -> SurveyLink:
    """Read a survey token. Raises ``ExpiredToken`` for a genuine link older than the link age,
    ``InvalidToken`` for anything else (tampered, another purpose's, a profile merged or erased since)."""
    payload = token_read(
        purpose=SURVEY_PURPOSE,
        token=token,
        max_age_seconds=int(timedelta(days=SURVEY_LINK_MAX_AGE_DAYS).total_seconds()),
    )
    customer = Customer.objects.active().filter(public_id=payload.get("c")).first()
    if customer is None:
        raise InvalidToken("This link is not valid.")
    return SurveyLink(customer=customer, source=str(payload.get("s", ""))[:200])


def survey_response_for(link: SurveyLink) -> SurveyResponse | None:
    """The answer already given through this link, if any (read only)."""
    return SurveyResponse.objects.filter(customer=link.customer, source=link.source).first()


def _score(value) -> int:
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or not 0 <= int(text) <= 10:
        raise SurveyAnswerRefused("Please choose a score from 0 to 10.")
    return int(text)


def _comment(value) -> str:
    text = _CONTROL.sub("", str(value or "")).replace("\r\n", "\n").strip()
    if len(text) > SurveyResponse.MAX_COMMENT:
        raise SurveyAnswerRefused(f"Please keep your comment under {SurveyResponse.MAX_COMMENT} characters.")
    return text


@atomic_retry
def survey_answer(*, link: SurveyLink, score, comment="", now: datetime | None = None) -> SurveyResponse:
    """Record (or, within ``SURVEY_EDIT_DAYS`` of the first answer, replace) the answer of ``link``.

    Locks the customer row (``customers.lock_objects`` order), so two submissions of the same link
    serialise: the unique (customer, source) key keeps one row. Raises ``SurveyAnswerRefused`` for a
    score outside 0-10, a comment too long, or a change after the edit window; nothing is changed then.
    Idempotent: the same answer again writes the same values.
    """
    score_value, comment_text = _score(score), _comment(comment)
    now = now or timezone.now()
    customer = customers_lock([link.customer.pk])[link.customer.pk]
    existing = SurveyResponse.objects.filter(customer=customer, source=link.source).first()
    if existing is None:
        return SurveyResponse.objects.create(
            customer=customer,
            source=link.source,
            score=score_value,
            comment=comment_text,
            answered_at=now,
            first_answered_at=now,
        )
    if now - existing.first_answered_at > timedelta(days=SURVEY_EDIT_DAYS):
        raise SurveyAnswerRefused("Thank you: your answer is already recorded and can no longer be changed.")
    existing.score, existing.comment, existing.answered_at = score_value, comment_text, now
    existing.save(update_fields=["score", "comment", "answered_at"])
    return existing
