"""The journey diagram: boxes with plain-word labels (escaped), arrows, live counts from the rows."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.journeys.diagram import journey_diagram_svg
from campaigns.journeys.selectors_admin import journey_step_counts
from campaigns.models import Enrolment, Journey, JourneyStepRun, JourneyVersion
from tests.factories import CustomerFactory, MarketingUserFactory
from tests.factories.campaigns import MessageFactory, SegmentFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def journey():
    hostile = MessageFactory(name='<script>alert("x")</script> & welcome')
    segment = SegmentFactory(name="Gold <b>members</b>")
    journey = Journey.objects.create(name="Welcome <i>", trigger="consent_confirmed")
    version = JourneyVersion.objects.create(
        journey=journey,
        number=1,
        published_at=NOW,
        steps=[
            {"key": "hello", "kind": "send", "message": hostile.pk, "next": "wait"},
            {"key": "wait", "kind": "wait", "hours": 48, "next": "gold"},
            {"key": "gold", "kind": "branch", "condition": {"segment": segment.pk}, "yes": "bonus", "no": "done"},
            {"key": "bonus", "kind": "points", "points": 100, "reason": "welcome"},
            {"key": "done", "kind": "exit"},
        ],
    )
    journey.live_version = version
    journey.status = Journey.Status.LIVE
    journey.save()
    return journey


def _enrol(journey, *, step_key, status=Enrolment.Status.ACTIVE, ran=()):
    enrolment = Enrolment.objects.create(
        journey=journey,
        version=journey.live_version,
        customer=CustomerFactory(),
        step_key=step_key,
        status=status,
        entered_at=NOW,
        due_at=NOW,
    )
    for key in ran:
        JourneyStepRun.objects.create(
            enrolment=enrolment, step_key=key, kind="send", version=journey.live_version, ran_at=NOW
        )
    return enrolment


def test_counts_are_waiting_at_each_step_and_passed_through_it(journey, django_assert_max_num_queries):
    _enrol(journey, step_key="wait", ran=["hello"])
    _enrol(journey, step_key="wait", ran=["hello"])
    _enrol(journey, step_key="gold", ran=["hello", "wait"])
    _enrol(journey, step_key="", status=Enrolment.Status.COMPLETED, ran=["hello", "wait", "gold", "bonus"])

    with django_assert_max_num_queries(2):
        counts = journey_step_counts(journey)

    assert counts["hello"] == {"waiting": 0, "passed": 4}
    assert counts["wait"] == {"waiting": 2, "passed": 2}
    assert counts["gold"] == {"waiting": 1, "passed": 1}
    assert counts["bonus"] == {"waiting": 0, "passed": 1}
    assert "" not in counts or counts[""]["waiting"] == 0  # finished enrolments wait nowhere


def test_svg_escapes_labels_and_shows_counts_and_both_branch_paths(journey):
    _enrol(journey, step_key="wait", ran=["hello"])

    svg = str(journey_diagram_svg(journey.live_version.steps, journey_step_counts(journey), title=journey.name))

    assert "<script>" not in svg
    assert "<b>" not in svg
    assert "&lt;script&gt;" in svg
    assert "Gold &lt;b&gt;members&lt;/b&gt;" in svg
    assert 'aria-label="Welcome &lt;i&gt;"' in svg
    assert "1 waiting · 0 passed" in svg  # the wait step
    assert "0 waiting · 1 passed" in svg  # the first send
    assert svg.count('class="step"') == 5
    assert "edge-yes" in svg
    assert "edge-no" in svg
    assert "Wait 2 days" in svg


def test_branch_paths_are_side_by_side(journey):
    from campaigns.journeys.diagram import _layout

    where = _layout(journey.live_version.steps)

    assert where["hello"] == (0, 0)
    assert where["gold"] == (0, 2)
    assert where["bonus"] == (0, 3)  # yes below
    assert where["done"] == (1, 3)  # no beside it


def test_unreached_steps_and_loops_are_still_drawn():
    steps = [
        {"key": "a", "kind": "wait", "hours": 1, "next": "a2"},
        {"key": "a2", "kind": "wait", "hours": 1, "next": "a"},  # back up: a loop
        {"key": "orphan", "kind": "exit"},
    ]
    svg = str(journey_diagram_svg(steps, {}))
    assert svg.count('class="step"') == 3


def test_journey_page_and_svg_endpoint_show_the_diagram(client, journey):
    user = MarketingUserFactory()
    client.login(username=user.username, password=PASSWORD)
    _enrol(journey, step_key="wait", ran=["hello"])

    page = client.get(reverse("admin:campaigns_journey_change", args=[journey.pk])).content.decode()
    svg = client.get(reverse("admin:campaigns_journey_diagram", args=[journey.pk]))

    assert 'id="journey-diagram"' in page
    assert "1 waiting · 0 passed" in page
    assert svg["Content-Type"] == "image/svg+xml"
    assert b"&lt;script&gt;" in svg.content
    assert timezone.is_aware(NOW)
