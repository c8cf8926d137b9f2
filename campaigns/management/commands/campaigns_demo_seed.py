"""Load the campaign studio demo: segments, personas, two draft campaigns ready to schedule, and one
broadcast scheduled a minute ahead, so a newcomer watches it send into the outbox.

Also loads the welcome and birthday journeys from their templates, published where the journey engine
is installed (else left as drafts).

Runs after ``demo_seed`` and ``loyalty_demo_seed`` and is idempotent: segments, messages, journeys and
campaigns are looked up by name and created only when missing. Variants are stored through
``variant_save`` (validation and audit trail) and campaigns recorded with ``campaign_record_changes``,
as the admin does. The two studio campaigns stay drafts. The broadcast is created once and scheduled
through ``campaign_status_change``; a later run schedules it again (a minute ahead) only if it has not
started sending and its time has passed, so re-running the demo never piles up campaigns or sends twice.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from campaigns import events
from campaigns.audience import segment_counts
from campaigns.journeys.drafts import JourneyEngineMissing, journey_draft_publish
from campaigns.journeys.templates_library import TEMPLATES, journey_from_template
from campaigns.models import Campaign, Journey, Message, Segment, Variant
from campaigns.services.campaigns import campaign_problems, campaign_record_changes, campaign_status_change
from campaigns.services.messages import variant_save
from customers.models import Source, Store
from loyalty.models import CouponCode, Offer, Tier

PROGRAMME = "Tandem Rewards"
WELCOME_OFFER = "Welcome 10% off"
WELCOME_CODE = "WELCOME10"
BIRTHDAY_OFFER = "Birthday $15 off"
# Ready-made journeys the demo loads (and publishes, where the journey engine is installed).
DEMO_JOURNEYS = ("welcome", "birthday")

LAPSED = "Lapsed in-store shoppers"
GOLD = "Gold members"
MIAMI = "Miami customers"
PERSONA_REGULARS = "Loyal regulars"
PERSONA_ONLINE = "Online first"

EVERYONE = "Everyone (demo broadcast)"

WIN_BACK = "We miss you at the store"
BROADCAST = "Welcome demo broadcast"
BROADCAST_DELAY = timedelta(minutes=1)
WELCOME_MIAMI = "Welcome to Lincoln Road: 10% off"

# The default column of each message, per channel; persona columns below override a few cells.
WIN_BACK_VARIANTS = {
    "email": {
        "subject": "{{ first_name }}, it has been a while",
        "preheader": "New season arrivals at {{ store_name }}",
        "html_body": (
            "<h1>Hi {{ first_name }},</h1>"
            "<p>We have not seen you at {{ store_name }} for a while. The new season has arrived, "
            "and our stylists would love to show you around.</p>"
            "<p>Drop by this week: {{ store_address }}.</p>"
        ),
    },
    "sms": {
        "sms_body": (
            "{{ brand_name }}: hi {{ first_name }}, new season at {{ store_name }}. Come and see us this week! "
            "Reply STOP to opt out"
        ),
    },
    "push": {
        "push_title": "New season at {{ store_name }}",
        "push_body": "{{ first_name }}, come and see what is new this week.",
        "push_url": "https://shop.tandem.example/new-season",
    },
}
WIN_BACK_PERSONA_VARIANTS = {
    PERSONA_REGULARS: {
        "email": {
            "subject": "{{ first_name }}, your {{ tier }} perks are waiting",
            "preheader": "You have {{ points_balance }} points to spend",
            "html_body": (
                "<h1>Hi {{ first_name }},</h1>"
                "<p>As a {{ tier }} member you have <strong>{{ points_balance }} points</strong> to spend at "
                "{{ store_name }}. Come in this week and our team will help you choose.</p>"
            ),
        },
    },
    PERSONA_ONLINE: {
        "push": {
            "push_title": "New season, delivered",
            "push_body": "{{ first_name }}, shop the new season online or pick up at {{ store_name }}.",
            "push_url": "https://shop.tandem.example/new-season?pickup=1",
        },
    },
}
WELCOME_VARIANTS = {
    "email": {
        "subject": "{{ first_name }}, 10% off at Lincoln Road",
        "preheader": "Your code: {{ coupon_code }}",
        "html_body": (
            "<h1>Welcome, {{ first_name }}</h1>"
            "<p>Show the code <strong>{{ coupon_code }}</strong> at {{ store_name }} or use it online "
            "for 10% off one purchase.</p>"
        ),
    },
    "sms": {
        "sms_body": "{{ brand_name }}: 10% off at Lincoln Road with code {{ coupon_code }}. Reply STOP to opt out",
    },
}
BROADCAST_VARIANTS = {
    "email": {
        "subject": "{{ first_name }}, welcome to {{ brand_name }}",
        "preheader": "What is new at {{ store_name }} this week",
        "html_body": (
            "<h1>Hi {{ first_name }},</h1>"
            "<p>Thank you for shopping with us. This week at {{ store_name }}: new arrivals, and our team "
            "is there to help you choose.</p><p>{{ store_address }}</p>"
        ),
    },
    "sms": {
        "sms_body": "{{ brand_name }}: hi {{ first_name }}, new arrivals at {{ store_name }}. Reply STOP to opt out"
    },
}


class Command(BaseCommand):
    help = (
        "Load demo segments, personas, two draft campaigns (one with an offer) and a broadcast scheduled a "
        "minute ahead; idempotent."
    )

    def handle(self, *args, **options) -> None:
        marketing = get_user_model().objects.filter(username="marketing").first()
        miami = Store.objects.filter(code="mia-lincoln").first()
        if marketing is None or miami is None:
            raise CommandError("Run `manage.py demo_seed` first: the campaign demo builds on its stores and staff.")
        gold = Tier.objects.filter(programme__name=PROGRAMME, name="Gold").first()
        offer = Offer.objects.filter(programme__name=PROGRAMME, name=WELCOME_OFFER).first()
        code = CouponCode.objects.filter(code=WELCOME_CODE, offer=offer).first() if offer else None
        if gold is None or code is None:
            raise CommandError("Run `manage.py loyalty_demo_seed` first: the campaign demo uses its tiers and offer.")
        with transaction.atomic():
            segments = self._segments(marketing, miami=miami, gold=gold)
            win_back = self._campaign(
                marketing,
                name=WIN_BACK,
                segments=segments,
                variants=WIN_BACK_VARIANTS,
                persona_variants=WIN_BACK_PERSONA_VARIANTS,
                fields={
                    "goal": Campaign.Goal.ENGAGEMENT,
                    "kpi": Campaign.Kpi.STORE_VISITS,
                    "category": Campaign.Category.PROMOTIONAL,
                    "channels": ["email", "sms", "push"],
                    "mode": Campaign.Mode.PREFERRED,
                },
                include=[LAPSED],
                exclude=[],
            )
            welcome = self._campaign(
                marketing,
                name=WELCOME_MIAMI,
                segments=segments,
                variants=WELCOME_VARIANTS,
                persona_variants={},
                fields={
                    "goal": Campaign.Goal.CONVERSION,
                    "kpi": Campaign.Kpi.REDEMPTIONS,
                    "kpi_target": 40,
                    "category": Campaign.Category.PROMOTIONAL,
                    "channels": ["email", "sms"],
                    "mode": Campaign.Mode.ALL,
                    "offer": offer,
                    "coupon_mode": Campaign.CouponMode.SHARED,
                    "shared_code": code,
                },
                include=[MIAMI],
                exclude=[GOLD],
            )
            broadcast = self._campaign(
                marketing,
                name=BROADCAST,
                segments=segments,
                variants=BROADCAST_VARIANTS,
                persona_variants={},
                fields={
                    "goal": Campaign.Goal.ENGAGEMENT,
                    "kpi": Campaign.Kpi.STORE_VISITS,
                    "category": Campaign.Category.PROMOTIONAL,
                    "channels": ["email", "sms"],
                    "mode": Campaign.Mode.PREFERRED,
                },
                include=[EVERYONE],
                exclude=[],
            )
            self._schedule(marketing, broadcast)
        journeys = self._journeys(marketing)
        self._summary(segments, [win_back, welcome, broadcast])
        self._journeys_summary(journeys)

    # --- journeys -------------------------------------------------------------------------------
    def _journeys(self, actor) -> list[Journey]:
        """The welcome and birthday journeys from their templates, published once the engine can publish them."""
        birthday_offer = Offer.objects.filter(programme__name=PROGRAMME, name=BIRTHDAY_OFFER).first()
        journeys = []
        for key in DEMO_JOURNEYS:
            name = TEMPLATES[key].name
            journey = Journey.objects.filter(name=name).first()
            if journey is None:
                journey = journey_from_template(key=key, actor=actor, offer=birthday_offer)
            if journey.live_version_id is None:
                # Without the engine it stays a draft; a later run publishes it once the engine is installed.
                with contextlib.suppress(JourneyEngineMissing):
                    journey_draft_publish(journey=journey, moves={}, actor=actor)
                journey.refresh_from_db()
            journeys.append(journey)
        return journeys

    def _journeys_summary(self, journeys: list[Journey]) -> None:
        for journey in journeys:
            state = "live" if journey.live_version_id else "draft (publish it in the admin)"
            self.stdout.write(
                f"  journey {journey.name!r}: {state}; see who is on each step at "
                f"/admin/campaigns/journey/{journey.pk}/change/"
            )

    def _schedule(self, actor, campaign: Campaign) -> None:
        """Schedule the broadcast a minute ahead unless it is already due later or has started sending."""
        now = timezone.now()
        if campaign.status == Campaign.Status.SCHEDULED and campaign.scheduled_at > now:
            return
        if campaign.status == Campaign.Status.SCHEDULED:  # its time passed with no worker running to launch it
            campaign_status_change(campaign=campaign, to=Campaign.Status.DRAFT, actor=actor)
        if campaign.status == Campaign.Status.DRAFT:
            campaign_status_change(
                campaign=campaign, to=Campaign.Status.SCHEDULED, at=now + BROADCAST_DELAY, actor=actor
            )

    # --- segments and personas ------------------------------------------------------------------
    def _segments(self, actor, *, miami: Store, gold: Tier) -> dict[str, Segment]:
        specs = [
            (
                LAPSED,
                "Bought in a store before, but not in the last 90 days.",
                {
                    "match": "all",
                    "rules": [
                        {"type": "purchase", "metric": "count", "op": "gte", "value": 1, "channel": "store"},
                        {"type": "purchase", "metric": "recency", "op": "not_within", "days": 90, "channel": "store"},
                    ],
                },
                False,
            ),
            (
                GOLD,
                "Tandem Rewards members in the Gold tier.",
                {"match": "all", "rules": [{"type": "loyalty", "field": "tier", "op": "in", "values": [gold.pk]}]},
                False,
            ),
            (
                MIAMI,
                "Customers whose home store is Miami Lincoln Road.",
                {"match": "all", "rules": [{"type": "store", "op": "in", "values": [miami.pk]}]},
                False,
            ),
            (
                EVERYONE,
                "Every customer, whatever brought them in; the demo broadcast goes to them.",
                {"match": "all", "rules": [{"type": "source", "op": "in", "values": list(Source.values)}]},
                False,
            ),
            (
                PERSONA_REGULARS,
                "Members in Silver or above. Talk to them as insiders: name their tier and points, "
                "never lead with a discount.",
                {"match": "all", "rules": [{"type": "loyalty", "field": "tier_rank", "op": "gte", "value": 1}]},
                True,
            ),
            (
                PERSONA_ONLINE,
                "Signed up on the web shop. Short and practical: delivery, click and collect, links that open the app.",
                {"match": "all", "rules": [{"type": "source", "op": "in", "values": ["web"]}]},
                True,
            ),
        ]
        segments = {}
        for name, description, rules, is_persona in specs:
            segment = Segment.objects.filter(name=name).first()
            if segment is None:
                segment = Segment(
                    name=name, description=description, rules=rules, is_persona=is_persona, created_by=actor
                )
                segment.full_clean()
                segment.save()
                events.segment_changed_event(
                    segment=segment,
                    actor=actor,
                    created=True,
                    changes={"name": name, "is_persona": is_persona, "rules": rules},
                )
            segments[name] = segment
        return segments

    # --- messages and campaigns -----------------------------------------------------------------
    def _campaign(self, actor, *, name, segments, variants, persona_variants, fields, include, exclude) -> Campaign:
        campaign = Campaign.objects.filter(name=name).first()
        if campaign is not None:
            return campaign
        message = Message.objects.create(name=name, purpose=Message.Purpose.MARKETING, created_by=actor)
        for channel, cell in variants.items():
            variant_save(variant=Variant(message=message, channel=channel, **cell), actor=actor)
        for persona_name, cells in persona_variants.items():
            for channel, cell in cells.items():
                variant = Variant(message=message, persona=segments[persona_name], channel=channel, **cell)
                variant_save(variant=variant, actor=actor)
        campaign = Campaign(name=name, message=message, created_by=actor, **fields)
        campaign.full_clean()
        campaign.save()
        campaign.include_segments.set([segments[item] for item in include])
        campaign.exclude_segments.set([segments[item] for item in exclude])
        campaign_record_changes(campaign=campaign, actor=actor, before=None)
        problems = campaign_problems(campaign)
        if problems:  # the demo must show campaigns that are ready to schedule
            raise CommandError(f"{name}: {'; '.join(problems)}")
        return campaign

    def _summary(self, segments: dict[str, Segment], campaigns: list[Campaign]) -> None:
        write = self.stdout.write
        write("Campaign demo ready:")
        for segment in segments.values():
            write(
                f"  {'persona' if segment.is_persona else 'segment'} {segment.name}: {segment_counts(segment)['total']}"
            )
        for campaign in campaigns:
            if campaign.status != Campaign.Status.DRAFT:
                when = f" for {timezone.localtime(campaign.scheduled_at):%H:%M:%S %Z}" if campaign.scheduled_at else ""
                write(
                    f"  {campaign.get_status_display().lower()} campaign {campaign.name!r}{when}: watch it send at "
                    f"/admin/campaigns/campaign/{campaign.pk}/change/ (or `manage.py campaign watch {campaign.pk}`), "
                    "then see the messages in /admin/campaigns/outboxmessage/"
                )
                continue
            write(
                f"  draft campaign {campaign.name!r}: {campaign.message.variants.count()} variants, "
                f"channels {', '.join(campaign.channel_list)}"
                + (f", offer code {campaign.shared_code}" if campaign.offer_id else "")
            )
        write("  Open them in the marketing admin: /admin/campaigns/campaign/")
