"""The journey editor works as plain forms: add and remove re-render without saving, Save stores a draft."""

import pytest
from django.urls import reverse

from campaigns.models import Journey, JourneyVersion
from tests.campaigns.posted_form import form_fields
from tests.factories import MarketingUserFactory
from tests.factories.campaigns import MessageFactory, SegmentFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client):
    user = MarketingUserFactory(email="marketer@staff.example.com")
    client.login(username=user.username, password=PASSWORD)
    return user


def _post(client, url, fields, **extra):
    data = {name: values if len(values) > 1 else values[0] for name, values in fields.items()}
    data.update(extra)
    return client.post(url, data)


def _fields(response):
    assert response.status_code == 200, response.content[:2000]
    return form_fields(response.content.decode(), "journey-form")


def test_marketer_builds_a_two_step_journey_without_javascript(client, marketer):
    # given a welcome message and the empty editor
    welcome = MessageFactory(name="Welcome aboard")
    url = reverse("admin:campaigns_journey_add")
    fields = _fields(client.get(url))
    fields.update(name=["Welcome"], trigger=["consent_confirmed"], consent_channel=["email"])

    # when they add a send step at the start (a submit button: nothing is saved)
    fields["add_kind-start"] = ["send"]
    response = _post(client, url, fields, _add_after="")
    fields = _fields(response)
    assert Journey.objects.count() == 0
    assert fields["steps-count"] == ["1"]
    assert fields["step-0-kind"] == ["send"]
    fields["step-0-message"] = [str(welcome.pk)]

    # and a wait after it, of two days
    fields["add_kind-send-1"] = ["wait"]
    fields = _fields(_post(client, url, fields, _add_after="send-1"))
    assert fields["steps-count"] == ["2"]
    assert fields["step-0-next"] == ["wait-1"]  # the send now leads to the wait
    assert fields["step-0-message"] == [str(welcome.pk)]  # what was chosen survived the round trip
    fields["step-1-wait_amount"], fields["step-1-wait_unit"] = ["2"], ["days"]

    # and save
    response = _post(client, url, fields, _save="Save")

    # then the journey is stored with its steps as a draft version, in the model's grammar
    journey = Journey.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:campaigns_journey_change", args=[journey.pk])
    assert (journey.name, journey.trigger, journey.trigger_params) == (
        "Welcome",
        "consent_confirmed",
        {"channel": "email"},
    )
    assert journey.status == Journey.Status.DRAFT
    assert journey.live_version_id is None
    draft = JourneyVersion.objects.get(journey=journey)
    assert draft.published_at is None
    assert draft.steps == [
        {"key": "send-1", "kind": "send", "message": welcome.pk, "next": "wait-1"},
        {"key": "wait-1", "kind": "wait", "hours": 48},
    ]

    # and the change page shows the steps in plain words, and the diagram
    page = client.get(response["Location"]).content.decode()
    assert "Welcome aboard" in page
    assert "Wait 2 days" in page
    assert "<svg" in page


def test_remove_rewires_what_led_to_the_step_and_saves_nothing(client, marketer):
    message = MessageFactory(name="Hello")
    journey = Journey.objects.create(name="Three", trigger="inactivity", trigger_params={"days": 90})
    JourneyVersion.objects.create(
        journey=journey,
        number=1,
        steps=[
            {"key": "a", "kind": "send", "message": message.pk, "next": "b"},
            {"key": "b", "kind": "wait", "hours": 24, "next": "c"},
            {"key": "c", "kind": "send", "message": message.pk},
        ],
    )
    url = reverse("admin:campaigns_journey_change", args=[journey.pk])
    fields = _fields(client.get(url))
    assert fields["days"] == ["90"]

    fields = _fields(_post(client, url, fields, _remove="b"))

    assert fields["steps-count"] == ["2"]
    assert fields["step-0-key"] == ["a"]
    assert fields["step-0-next"] == ["c"]
    assert JourneyVersion.objects.get(journey=journey).steps[1]["key"] == "b"  # not saved yet
    _post(client, url, fields, _save="Save")
    assert [step["key"] for step in JourneyVersion.objects.get(journey=journey).steps] == ["a", "c"]


def test_a_step_missing_its_message_is_refused_with_a_plain_error(client, marketer):
    url = reverse("admin:campaigns_journey_add")
    fields = _fields(client.get(url))
    fields.update(name=["Broken"], trigger=["inactivity"], days=["30"], **{"add_kind-start": ["send"]})
    fields = _fields(_post(client, url, fields, _add_after=""))

    response = _post(client, url, fields, _save="Save")

    page = response.content.decode()
    assert response.status_code == 200
    assert "Required for this step." in page
    assert "Some steps need attention" in page
    assert Journey.objects.count() == 0


def test_trigger_parameters_are_required_per_trigger(client, marketer):
    url = reverse("admin:campaigns_journey_add")
    fields = _fields(client.get(url))
    fields.update(name=["Lapsed"], trigger=["inactivity"], days=[""], **{"add_kind-start": ["exit"]})
    fields = _fields(_post(client, url, fields, _add_after=""))

    page = _post(client, url, fields, _save="Save").content.decode()

    assert "Days without a purchase: required for this trigger." in page
    assert Journey.objects.count() == 0


def test_a_purchase_trigger_by_product_category_in_plain_words(client, marketer):
    from tests.factories.customers import ProductCategoryFactory

    shampoo, _soap = ProductCategoryFactory(name="Shampoo"), ProductCategoryFactory(name="Soap")
    ProductCategoryFactory(name="Retired", is_active=False)
    url = reverse("admin:campaigns_journey_add")
    page = client.get(url).content.decode()
    assert "Only these product categories (none ticked: any)" in page
    assert "Retired" not in page
    fields = _fields(client.get(url))
    fields.update(name=["Care"], trigger=["purchase"], purchase_channel=["store"], categories=[str(shampoo.pk)])
    fields["add_kind-start"] = ["exit"]
    fields = _fields(_post(client, url, fields, _add_after=""))

    response = _post(client, url, fields, _save="Save")

    assert response.status_code == 302
    journey = Journey.objects.get()
    assert journey.trigger_params == {"channel": "store", "category_ids": [shampoo.pk]}
    # and the saved choice is ticked again on the change page
    assert _fields(client.get(response["Location"]))["categories"] == [str(shampoo.pk)]


def test_a_replenishment_trigger_needs_categories_that_run_out(client, marketer):
    from tests.factories.customers import ProductCategoryFactory

    url = reverse("admin:campaigns_journey_add")
    fields = _fields(client.get(url))
    fields.update(name=["Restock"], trigger=["replenishment_due"], date_time=["08:30"])
    fields["add_kind-start"] = ["exit"]
    fields = _fields(_post(client, url, fields, _add_after=""))
    # none has a number of days yet
    page = _post(client, url, fields, _save="Save").content.decode()
    assert "No product category has a number of days until it usually runs out yet" in page
    coffee = ProductCategoryFactory(name="Coffee")
    shampoo = ProductCategoryFactory(name="Shampoo", replenish_after_days=30)
    page = _post(client, url, {**fields, "categories": [str(coffee.pk)]}, _save="Save").content.decode()
    assert "No usual number of days until it runs out for: Coffee." in page
    assert Journey.objects.count() == 0

    response = _post(client, url, {**fields, "categories": [str(shampoo.pk)]}, _save="Save")

    assert response.status_code == 302
    journey = Journey.objects.get()
    assert (journey.trigger, journey.trigger_params) == (
        "replenishment_due",
        {"time": "08:30", "category_ids": [shampoo.pk]},
    )


def test_a_branch_saves_its_condition_and_both_paths(client, marketer):
    message = MessageFactory(name="Offer")
    gold = SegmentFactory(name="Gold")
    journey = Journey.objects.create(name="Split", trigger="purchase", trigger_params={"channel": "any"})
    JourneyVersion.objects.create(
        journey=journey,
        number=1,
        steps=[
            {"key": "offer", "kind": "send", "message": message.pk},
            {"key": "done", "kind": "exit"},
        ],
    )
    url = reverse("admin:campaigns_journey_change", args=[journey.pk])
    fields = _fields(client.get(url))
    fields["add_kind-start"] = ["branch"]
    fields = _fields(_post(client, url, fields, _add_after=""))
    assert fields["step-0-kind"] == ["branch"]
    fields.update(
        {
            "step-0-condition": ["segment"],
            "step-0-segment": [str(gold.pk)],
            "step-0-yes": ["offer"],
            "step-0-no": ["done"],
        }
    )
    fields.update(exit_rules=["purchase", "consent_withdrawn"], goal_kind=["purchase"], goal_days=["14"])

    response = _post(client, url, fields, _save="Save")

    assert response.status_code == 302
    steps = JourneyVersion.objects.get(journey=journey).steps
    assert steps[0] == {
        "key": "branch-1",
        "kind": "branch",
        "condition": {"segment": gold.pk},
        "yes": "offer",
        "no": "done",
    }
    journey.refresh_from_db()
    assert journey.exit_rules == ["purchase", "consent_withdrawn"]
    assert journey.goal == {"kind": "purchase", "days": 14}


def test_an_engagement_branch_must_look_at_an_earlier_send(client, marketer):
    message = MessageFactory(name="Nudge")
    journey = Journey.objects.create(name="Engaged", trigger="inactivity", trigger_params={"days": 90})
    steps = [
        {"key": "nudge", "kind": "send", "message": message.pk, "next": "clicked"},
        {"key": "clicked", "kind": "branch", "condition": {"engaged": "clicked", "step": "nudge"}, "no": "again"},
        {"key": "again", "kind": "send", "message": message.pk},
    ]
    JourneyVersion.objects.create(journey=journey, number=1, steps=steps)
    url = reverse("admin:campaigns_journey_change", args=[journey.pk])
    fields = _fields(client.get(url))
    assert fields["step-1-condition"] == ["engaged"]
    assert fields["step-1-engaged_step"] == ["nudge"]

    response = _post(client, url, fields, _save="Save")

    assert response.status_code == 302
    assert JourneyVersion.objects.get(journey=journey).steps == steps  # round trip: unchanged
