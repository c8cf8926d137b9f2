"""Ready-made journeys: the six automations retailers start with, created as drafts with their messages.

Each template names a trigger, re-entry, exit rules, a goal, its messages (an email and an SMS variant
each, using the placeholders every message has) and its steps. ``journey_from_template`` creates the
messages through the message services (validated and audited as the studio does), the journey, and its
steps as a draft version: nothing runs until the marketer publishes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from django.db import transaction

from campaigns.journeys.drafts import journey_draft_save, journey_save
from campaigns.models import Journey, Message, Variant
from campaigns.services.messages import message_save, variant_save

STOP = "Reply STOP to opt out"


@dataclasses.dataclass(frozen=True)
class JourneyTemplate:
    key: str
    name: str
    description: str
    trigger: str
    trigger_params: dict
    messages: dict[str, dict[str, dict[str, str]]]  # message name -> channel -> variant fields
    # (message ids by name, offer id or None) -> steps
    steps: Callable[[dict[str, int], int | None], list[dict]]
    reentry: str = Journey.Reentry.NEVER
    reentry_days: int | None = None
    exit_rules: tuple[str, ...] = ("consent_withdrawn",)
    goal_days: int | None = 14
    category: str = "promotional"
    uses_offer: bool = False


def _email(subject: str, preheader: str, body: str) -> dict[str, str]:
    return {"subject": subject, "preheader": preheader, "html_body": body}


def _sms(text: str) -> dict[str, str]:
    return {"sms_body": f"{{{{ brand_name }}}}: {text} {STOP}"}


WELCOME, WELCOME_OFFER = "Welcome: hello", "Welcome: an offer for your first visit"
BIRTHDAY = "Birthday: a gift for you"
WIN_BACK, WIN_BACK_LAST = "Win-back: we miss you", "Win-back: still here for you"
EXPIRING = "Points expiring: use them soon"
REPLENISH = "Replenishment: time to stock up"
THANK_YOU = "First visit: thank you"


def _welcome_steps(ids, offer):
    return [
        {"key": "welcome", "kind": "send", "message": ids[WELCOME], "next": "wait-2-days"},
        {"key": "wait-2-days", "kind": "wait", "hours": 48, "next": "offer"},
        {"key": "offer", "kind": "send", "message": ids[WELCOME_OFFER]},
    ]


def _birthday_steps(ids, offer):
    send = {"key": "birthday", "kind": "send", "message": ids[BIRTHDAY]}
    if offer is None:
        return [send]
    return [{"key": "gift", "kind": "coupon", "offer": offer, "next": "birthday"}, send]


def _win_back_steps(ids, offer):
    return [
        {"key": "miss-you", "kind": "send", "message": ids[WIN_BACK], "next": "wait-7-days"},
        {"key": "wait-7-days", "kind": "wait", "hours": 7 * 24, "next": "clicked"},
        {
            "key": "clicked",
            "kind": "branch",
            "condition": {"engaged": "clicked", "step": "miss-you"},
            "no": "last-call",
        },
        {"key": "last-call", "kind": "send", "message": ids[WIN_BACK_LAST]},
    ]


def _expiring_steps(ids, offer):
    return [{"key": "expiring", "kind": "send", "message": ids[EXPIRING]}]


def _replenish_steps(ids, offer):
    return [{"key": "reminder", "kind": "send", "message": ids[REPLENISH]}]


def _thank_you_steps(ids, offer):
    return [
        {
            "key": "next-morning",
            "kind": "wait_until",
            "time": "10:00",
            "weekdays": [0, 1, 2, 3, 4, 5, 6],
            "next": "thank-you",
        },
        {"key": "thank-you", "kind": "send", "message": ids[THANK_YOU]},
    ]


TEMPLATES: dict[str, JourneyTemplate] = {
    template.key: template
    for template in [
        JourneyTemplate(
            key="welcome",
            name="Welcome series",
            description="When someone confirms their consent: a welcome now, an offer two days later.",
            trigger=Journey.Trigger.CONSENT_CONFIRMED,
            trigger_params={"channel": "any"},
            messages={
                WELCOME: {
                    "email": _email(
                        "Welcome to {{ brand_name }}, {{ first_name }}",
                        "Good to have you with us",
                        "<h1>Welcome, {{ first_name }}</h1><p>Thank you for joining {{ brand_name }}. "
                        "Our team at {{ store_name }} is looking forward to seeing you.</p>",
                    ),
                    "sms": _sms("welcome, {{ first_name }}! Glad to have you with us."),
                },
                WELCOME_OFFER: {
                    "email": _email(
                        "{{ first_name }}, a little something for your next visit",
                        "Show this email at {{ store_name }}",
                        "<h1>Hi {{ first_name }},</h1><p>As a thank-you for joining, there is a welcome offer "
                        "waiting for you at {{ store_name }} or online.</p><p>{{ store_address }}</p>",
                    ),
                    "sms": _sms("a welcome offer is waiting for you at {{ store_name }}."),
                },
            },
            steps=_welcome_steps,
        ),
        JourneyTemplate(
            key="birthday",
            name="Birthday gift",
            description="On their birthday at 09:00 their time: a coupon, and a message that carries it.",
            trigger=Journey.Trigger.DATE,
            trigger_params={"field": "birthday", "time": "09:00"},
            reentry=Journey.Reentry.AFTER_DAYS,
            reentry_days=300,
            category="loyalty",
            uses_offer=True,
            messages={
                BIRTHDAY: {
                    "email": _email(
                        "Happy birthday, {{ first_name }}!",
                        "A gift from all of us at {{ store_name }}",
                        "<h1>Happy birthday, {{ first_name }}</h1><p>To celebrate, here is a gift from us: "
                        "use the code <strong>{{ coupon_code }}</strong> in store or online this month.</p>",
                    ),
                    "sms": _sms("happy birthday, {{ first_name }}! Your gift code: {{ coupon_code }}."),
                },
            },
            steps=_birthday_steps,
        ),
        JourneyTemplate(
            key="win-back",
            name="Win-back after 90 days",
            description="No purchase for 90 days: a nudge, and a last call a week later to those who did not click.",
            trigger=Journey.Trigger.INACTIVITY,
            trigger_params={"days": 90},
            reentry=Journey.Reentry.AFTER_DAYS,
            reentry_days=180,
            exit_rules=("purchase", "consent_withdrawn"),
            messages={
                WIN_BACK: {
                    "email": _email(
                        "{{ first_name }}, it has been a while",
                        "New arrivals at {{ store_name }}",
                        "<h1>Hi {{ first_name }},</h1><p>We have not seen you for a while. Come and see what "
                        "is new at {{ store_name }}.</p><p>{{ store_address }}</p>",
                    ),
                    "sms": _sms("hi {{ first_name }}, new arrivals at {{ store_name }}. Come and see us!"),
                },
                WIN_BACK_LAST: {
                    "email": _email(
                        "Still here for you, {{ first_name }}",
                        "Our team at {{ store_name }} would love to help",
                        "<h1>Hi {{ first_name }},</h1><p>Whenever you are ready, our team at {{ store_name }} "
                        "is here to help you choose.</p>",
                    ),
                    "sms": _sms("{{ first_name }}, our team at {{ store_name }} is here whenever you are ready."),
                },
            },
            steps=_win_back_steps,
        ),
        JourneyTemplate(
            key="points-expiring",
            name="Points expiring in 14 days",
            description="Points about to expire within 14 days: a reminder to use them.",
            trigger=Journey.Trigger.POINTS_EXPIRING,
            trigger_params={"days": 14},
            reentry=Journey.Reentry.AFTER_DAYS,
            reentry_days=30,
            category="loyalty",
            messages={
                EXPIRING: {
                    "email": _email(
                        "{{ first_name }}, some of your points expire soon",
                        "You have {{ points_balance }} points",
                        "<h1>Hi {{ first_name }},</h1><p>You have <strong>{{ points_balance }} points</strong>, "
                        "and some of them expire in the next two weeks. Use them at {{ store_name }} or online.</p>",
                    ),
                    "sms": _sms("{{ first_name }}, some of your {{ points_balance }} points expire soon. Use them!"),
                },
            },
            steps=_expiring_steps,
        ),
        JourneyTemplate(
            key="replenishment",
            name="Replenishment reminder",
            description="On the day what they bought usually runs out (the days set on each product category), "
            "at 09:00 their time, unless they bought it again: a reminder to stock up. Again after each new purchase.",
            trigger=Journey.Trigger.REPLENISHMENT_DUE,
            trigger_params={"time": "09:00"},
            reentry=Journey.Reentry.EACH_TIME,
            exit_rules=("purchase", "consent_withdrawn"),
            messages={
                REPLENISH: {
                    "email": _email(
                        "Running low, {{ first_name }}?",
                        "Stock up at {{ store_name }}",
                        "<h1>Hi {{ first_name }},</h1><p>What you bought last time usually runs out about now: "
                        "time to stock up? We have it ready at {{ store_name }} or online.</p>",
                    ),
                    "sms": _sms("running low, {{ first_name }}? Stock up at {{ store_name }} or online."),
                },
            },
            steps=_replenish_steps,
        ),
        JourneyTemplate(
            key="first-visit",
            name="Thank you after a first store visit",
            description="First captured at a till: a thank-you the next morning at 10:00 their time.",
            trigger=Journey.Trigger.FIRST_CAPTURE,
            trigger_params={},
            messages={
                THANK_YOU: {
                    "email": _email(
                        "Thank you for visiting {{ store_name }}, {{ first_name }}",
                        "It was good to meet you",
                        "<h1>Thank you, {{ first_name }}</h1><p>It was good to meet you at {{ store_name }}. "
                        "We hope to see you again soon.</p><p>{{ store_address }}</p>",
                    ),
                    "sms": _sms("thank you for visiting {{ store_name }}, {{ first_name }}! See you soon."),
                },
            },
            steps=_thank_you_steps,
        ),
    ]
}


@transaction.atomic
def journey_from_template(*, key: str, actor, offer=None, name: str | None = None) -> Journey:
    """Create the journey of template ``key`` as a draft, with its messages, and return it.

    ``offer``: the loyalty ``Offer`` a coupon step gives (templates without one ignore it; a template that
    uses one leaves the coupon step out when none is given). Raises ``KeyError`` for an unknown template
    and ``ValidationError`` if a message variant is refused (nothing is stored then). Not idempotent: each
    call makes a new journey and new messages (the demo seed looks its journeys up by name first).
    """
    template = TEMPLATES[key]
    ids = {}
    for message_name, variants in template.messages.items():
        message = message_save(message=Message(name=message_name, purpose=Message.Purpose.MARKETING), actor=actor)
        for channel, fields in variants.items():
            variant_save(variant=Variant(message=message, channel=channel, **fields), actor=actor)
        ids[message_name] = message.pk
    journey = Journey(
        name=name or template.name,
        description=template.description,
        category=template.category,
        trigger=template.trigger,
        trigger_params=dict(template.trigger_params),
        reentry=template.reentry,
        reentry_days=template.reentry_days,
        exit_rules=list(template.exit_rules),
        goal={"kind": "purchase", "days": template.goal_days} if template.goal_days else {},
    )
    journey.full_clean()
    journey_save(journey=journey, actor=actor)
    offer_id = offer.pk if offer is not None and template.uses_offer else None
    journey_draft_save(journey=journey, steps=template.steps(ids, offer_id), actor=actor)
    return journey
