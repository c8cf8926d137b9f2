"""Journey changes in the audit trail, as campaigns': publishing a version, pausing, resuming, draining, archiving."""

import pytest
from django.urls import reverse

from campaigns.journeys.services import (
    JourneyStateError,
    journey_archive,
    journey_drain,
    journey_pause,
    journey_publish,
    journey_resume,
)
from campaigns.models import AuditEvent, Enrolment, Journey
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.customers import PASSWORD

from .conftest import email_message, two_step_steps

pytestmark = pytest.mark.django_db


def journey_events(journey):
    return list(
        AuditEvent.objects.filter(subject_type="journey", subject_id=journey.pk)
        .order_by("id")
        .values_list("action", "actor", "changes")
    )


@pytest.fixture
def marketer():
    return MarketingUserFactory()


def draft_journey():
    return Journey.objects.create(name="Welcome", trigger=Journey.Trigger.PURCHASE)


def test_publishing_records_the_version_who_published_it_and_where_people_went(marketer):
    journey = draft_journey()
    message = email_message()
    first = journey_publish(journey=journey, steps=two_step_steps(message), user=marketer)
    Enrolment.objects.create(
        journey=journey, version=first, customer=CustomerFactory(), step_key="wait", entered_at=first.published_at
    )
    shorter = [{"key": "welcome", "kind": "send", "message": message.pk}]
    journey_publish(journey=journey, steps=shorter, moves={"wait": "exit"}, user=marketer)
    assert journey_events(journey) == [
        ("published", marketer.pk, {"version": 1, "status": ["draft", "live"]}),
        ("published", marketer.pk, {"version": 2, "moves": {"wait": "exit"}}),
    ]
    event = AuditEvent.objects.filter(subject_type="journey").first()
    assert (event.subject_label, event.campaign_id) == ("Welcome", None)


def test_a_refused_publish_records_nothing(marketer):
    journey = draft_journey()
    with pytest.raises(ValueError):
        journey_publish(journey=journey, steps=[{"key": "a", "kind": "wait", "hours": 1, "next": "a"}], user=marketer)
    assert journey_events(journey) == []


def test_pause_resume_drain_and_archive_each_record_the_move_once(marketer):
    journey = draft_journey()
    journey_publish(journey=journey, steps=two_step_steps(email_message()))
    journey_pause(journey=journey, user=marketer)
    journey_pause(journey=journey, user=marketer)  # already paused: nothing changes, nothing recorded
    journey_resume(journey=journey, user=marketer)
    journey_drain(journey=journey, user=marketer)
    journey_archive(journey=journey, user=marketer)
    journey_archive(journey=journey, user=marketer)
    assert journey_events(journey)[1:] == [
        ("status_changed", marketer.pk, {"status": ["live", "paused"]}),
        ("status_changed", marketer.pk, {"status": ["paused", "live"]}),
        ("status_changed", marketer.pk, {"status": ["live", "draining"]}),
        ("status_changed", marketer.pk, {"status": ["draining", "archived"]}),
    ]


def test_a_refused_move_records_nothing(marketer):
    journey = draft_journey()
    with pytest.raises(JourneyStateError):
        journey_pause(journey=journey, user=marketer)
    assert journey_events(journey) == []


def test_a_move_by_the_system_has_no_actor():
    journey = draft_journey()
    journey_publish(journey=journey, steps=two_step_steps(email_message()))
    journey_pause(journey=journey)
    assert [actor for _, actor, _ in journey_events(journey)] == [None, None]


def test_the_journey_page_shows_its_history_where_a_campaign_shows_its_own(client, marketer):
    journey = draft_journey()
    journey_publish(journey=journey, steps=two_step_steps(email_message()), user=marketer)
    journey_pause(journey=journey, user=marketer)
    other = Journey.objects.create(name="Other <b>journey</b>", trigger=Journey.Trigger.PURCHASE)
    journey_publish(journey=other, steps=two_step_steps(email_message()), user=marketer)
    client.login(username=marketer.username, password=PASSWORD)
    page = client.get(reverse("admin:campaigns_journey_change", args=[journey.pk])).content.decode()
    history = page[page.index('id="journey-audit"') :]
    assert "Published" in history
    assert "Status changed" in history
    assert "[&#x27;live&#x27;, &#x27;paused&#x27;]" in history
    assert marketer.username in history
    assert "Other" not in history


def _press(client, journey, action):
    return client.post(reverse("admin:campaigns_journey_status", args=[journey.pk]), {"action": action}, follow=True)


def test_the_journey_page_pauses_resumes_drains_and_archives_with_one_button_each(client, marketer):
    journey = draft_journey()
    journey_publish(journey=journey, steps=two_step_steps(email_message()), user=marketer)
    inside = Enrolment.objects.create(
        journey=journey,
        customer=CustomerFactory(),
        version=journey.live_version,
        entry_key="x",
        step_key="first",
        entered_at=journey.updated_at,
    )
    client.login(username=marketer.username, password=PASSWORD)
    page = client.get(reverse("admin:campaigns_journey_change", args=[journey.pk])).content.decode()
    assert 'value="pause"' in page
    assert 'value="drain"' in page
    assert 'value="resume"' not in page

    for action, status in (("pause", "paused"), ("drain", "draining"), ("resume", "live")):
        answer = _press(client, journey, action)
        journey.refresh_from_db()
        assert journey.status == status, action
        assert "Welcome" in answer.content.decode()
    page = client.get(reverse("admin:campaigns_journey_change", args=[journey.pk])).content.decode()
    assert 'value="resume"' not in page
    assert 'value="pause"' in page

    _press(client, journey, "archive")
    journey.refresh_from_db()
    inside.refresh_from_db()
    assert (journey.status, inside.status, inside.exit_reason) == ("archived", "exited", "archived")
    assert [event[0] for event in journey_events(journey)][-4:] == ["status_changed"] * 4
    page = client.get(reverse("admin:campaigns_journey_change", args=[journey.pk])).content.decode()
    assert 'id="journey-status-actions"' not in page  # nothing left to do with an archived journey


def test_status_buttons_refuse_a_get_an_unknown_action_a_refused_move_and_a_viewer(client, marketer):
    journey = draft_journey()
    url = reverse("admin:campaigns_journey_status", args=[journey.pk])
    client.login(username=marketer.username, password=PASSWORD)

    assert client.get(url).status_code == 405
    assert "Choose pause, resume, drain or archive" in _press(client, journey, "explode").content.decode()
    assert "cannot be paused" in _press(client, journey, "pause").content.decode()  # a draft is not running
    journey.refresh_from_db()
    assert journey.status == "draft"
    assert journey_events(journey) == []

    viewer = MarketingUserFactory()
    viewer.user_permissions.clear()
    viewer.groups.clear()
    viewer.is_superuser = False
    viewer.save()
    client.login(username=viewer.username, password=PASSWORD)
    assert client.post(url, {"action": "archive"}).status_code in (302, 403)
    journey.refresh_from_db()
    assert journey.status == "draft"
