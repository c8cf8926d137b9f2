"""The journey's own fields in plain words: the trigger's parameters per trigger, exit rules, goal."""

from __future__ import annotations

import datetime as dt

from django import forms

from campaigns.models import Journey, Segment
from customers.models import ProductCategory, Store

EXIT_RULES = [
    ("purchase", "They make a purchase"),
    ("consent_withdrawn", "They withdraw their marketing consent"),
    ("left_segment", "They leave the entry segment"),
]
DATE_FIELDS = [("birthday", "Their birthday"), ("signup", "The anniversary of their sign-up")]
PURCHASE_CHANNELS = [("any", "Online or in store"), ("store", "In store"), ("online", "Online")]
CONSENT_CHANNELS = [("any", "Email or SMS"), ("email", "Email"), ("sms", "SMS")]
GOALS = [("", "No goal"), ("purchase", "A purchase")]

# The form fields that hold each trigger's parameters (shown only for that trigger once JS runs).
TRIGGER_FIELDS = {
    Journey.Trigger.CONSENT_CONFIRMED: ["consent_channel"],
    Journey.Trigger.FIRST_CAPTURE: ["stores"],
    Journey.Trigger.PURCHASE: ["purchase_channel", "stores", "categories"],
    Journey.Trigger.DATE: ["date_field", "date_time"],
    Journey.Trigger.INACTIVITY: ["days"],
    Journey.Trigger.POINTS_EXPIRING: ["days"],
    Journey.Trigger.TIER_CHANGED: ["tiers"],
    Journey.Trigger.COUPON_UNREDEEMED: ["days", "coupon_offer"],
    Journey.Trigger.SEGMENT_JOINED: ["join_segment"],
    Journey.Trigger.REPLENISHMENT_DUE: ["categories", "date_time"],
}
DAYS_LABEL = {
    Journey.Trigger.INACTIVITY: "Days without a purchase",
    Journey.Trigger.POINTS_EXPIRING: "Points expiring within (days)",
    Journey.Trigger.COUPON_UNREDEEMED: "Days after the coupon was issued",
}


def _tiers():
    from loyalty.models import Tier

    return Tier.objects.order_by("programme", "rank")


def _categories():
    return ProductCategory.objects.filter(is_active=True).order_by("name")


def _offers():
    from loyalty.models import Offer

    return Offer.objects.order_by("name")


class JourneyForm(forms.ModelForm):
    days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Number of days",
        help_text="Days without a purchase; points expiring within; or days after the coupon was issued.",
    )
    date_field = forms.ChoiceField(choices=DATE_FIELDS, required=False, label="Which date")
    date_time = forms.TimeField(
        required=False,
        initial=dt.time(9, 0),
        label="At (the customer's local time)",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    purchase_channel = forms.ChoiceField(choices=PURCHASE_CHANNELS, required=False, label="Where")
    stores = forms.ModelMultipleChoiceField(
        Store.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Only at these stores (none ticked: any store)",
    )
    categories = forms.ModelMultipleChoiceField(
        _categories(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Only these product categories (none ticked: any)",
        help_text="A purchase enters if it contains any of them. A replenishment reminder counts only "
        "categories with a number of days until they usually run out (set under Product categories).",
    )
    consent_channel = forms.ChoiceField(choices=CONSENT_CHANNELS, required=False, label="Consent to")
    tiers = forms.ModelMultipleChoiceField(
        _tiers(), required=False, widget=forms.CheckboxSelectMultiple, label="Into these tiers (none ticked: any)"
    )
    coupon_offer = forms.ModelChoiceField(_offers(), required=False, label="Only coupons of this offer")
    join_segment = forms.ModelChoiceField(
        Segment.objects.filter(is_persona=False).order_by("name"), required=False, label="The segment"
    )
    exit_rules = forms.MultipleChoiceField(
        choices=EXIT_RULES, required=False, widget=forms.CheckboxSelectMultiple, label="They leave early when"
    )
    goal_kind = forms.ChoiceField(choices=GOALS, required=False, label="Success is")
    goal_days = forms.IntegerField(required=False, min_value=1, max_value=365, label="Within (days of entering)")

    class Meta:
        model = Journey
        fields = ["name", "description", "category", "trigger", "entry_segment", "reentry", "reentry_days"]
        labels = {
            "trigger": "Customers enter when",
            "entry_segment": "Only if they are in",
            "reentry": "Can they go through again?",
            "reentry_days": "Again after (days)",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tiers"].queryset = _tiers()
        self.fields["categories"].queryset = _categories()
        self.fields["coupon_offer"].queryset = _offers()
        self.fields["entry_segment"].queryset = Segment.objects.filter(is_persona=False).order_by("name")
        self.fields["entry_segment"].empty_label = "Everyone (no segment)"
        journey = self.instance
        if journey.pk is None:
            return
        params = journey.trigger_params or {}
        goal = journey.goal or {}
        self.initial.update(
            days=params.get("days"),
            date_field=params.get("field", "birthday"),
            date_time=params.get("time", "09:00"),
            purchase_channel=params.get("channel", "any") if journey.trigger == Journey.Trigger.PURCHASE else "any",
            consent_channel=(
                params.get("channel", "any") if journey.trigger == Journey.Trigger.CONSENT_CONFIRMED else "any"
            ),
            stores=params.get("store_ids", []),
            categories=params.get("category_ids", []),
            tiers=params.get("tier_ids", []),
            coupon_offer=params.get("offer_id"),
            join_segment=params.get("segment"),
            exit_rules=list(journey.exit_rules or []),
            goal_kind=goal.get("kind", ""),
            goal_days=goal.get("days"),
        )

    def trigger_fields(self):
        """(bound field, the triggers it belongs to, space-separated) for the page's parameter rows."""
        owners: dict[str, list[str]] = {}
        for trigger, names in TRIGGER_FIELDS.items():
            for name in names:
                owners.setdefault(name, []).append(str(trigger))
        return [(self[name], " ".join(triggers)) for name, triggers in owners.items()]

    def clean(self):
        data = super().clean()
        trigger = data.get("trigger")
        if trigger in DAYS_LABEL and not data.get("days"):
            self.add_error("days", f"{DAYS_LABEL[trigger]}: required for this trigger.")
        if trigger in (Journey.Trigger.DATE, Journey.Trigger.REPLENISHMENT_DUE) and not data.get("date_time"):
            self.add_error("date_time", "Required for this trigger: the time of day, in the customer's zone.")
        if trigger == Journey.Trigger.REPLENISHMENT_DUE:
            self._check_replenishment(data.get("categories"))
        if trigger == Journey.Trigger.SEGMENT_JOINED and not data.get("join_segment"):
            self.add_error("join_segment", "Choose the segment they join.")
        if data.get("reentry") == Journey.Reentry.AFTER_DAYS and not data.get("reentry_days"):
            self.add_error("reentry_days", "How many days before they can go through again?")
        if data.get("goal_kind") and not data.get("goal_days"):
            self.add_error("goal_days", "Within how many days of entering?")
        if "left_segment" in (data.get("exit_rules") or []) and not data.get("entry_segment"):
            self.add_error("exit_rules", "Leaving the entry segment needs an entry segment.")
        return data

    def _check_replenishment(self, chosen) -> None:
        if chosen:
            without = [category.name for category in chosen if not category.replenish_after_days]
            if without:
                self.add_error(
                    "categories",
                    f"No usual number of days until it runs out for: {', '.join(without)}. "
                    "Set it under Product categories, or untick them.",
                )
        elif not ProductCategory.objects.filter(is_active=True, replenish_after_days__isnull=False).exists():
            self.add_error(
                "categories",
                "No product category has a number of days until it usually runs out yet; "
                "set one under Product categories first.",
            )

    def trigger_params(self) -> dict:
        """The ``Journey.trigger_params`` JSON for the cleaned trigger."""
        data = self.cleaned_data
        trigger = data["trigger"]
        stores = [store.pk for store in data.get("stores") or []]
        if trigger == Journey.Trigger.CONSENT_CONFIRMED:
            return {"channel": data.get("consent_channel") or "any"}
        if trigger == Journey.Trigger.FIRST_CAPTURE:
            return {"store_ids": stores} if stores else {}
        categories = [category.pk for category in data.get("categories") or []]
        if trigger == Journey.Trigger.PURCHASE:
            params = {"channel": data.get("purchase_channel") or "any"}
            if stores:
                params["store_ids"] = stores
            return {**params, "category_ids": categories} if categories else params
        if trigger == Journey.Trigger.REPLENISHMENT_DUE:
            params = {"time": data["date_time"].strftime("%H:%M")}
            return {**params, "category_ids": categories} if categories else params
        if trigger == Journey.Trigger.DATE:
            return {"field": data.get("date_field") or "birthday", "time": data["date_time"].strftime("%H:%M")}
        if trigger in (Journey.Trigger.INACTIVITY, Journey.Trigger.POINTS_EXPIRING):
            return {"days": data["days"]}
        if trigger == Journey.Trigger.COUPON_UNREDEEMED:
            offer = data.get("coupon_offer")
            return {"days": data["days"], **({"offer_id": offer.pk} if offer else {})}
        if trigger == Journey.Trigger.TIER_CHANGED:
            tiers = [tier.pk for tier in data.get("tiers") or []]
            return {"tier_ids": tiers} if tiers else {}
        if trigger == Journey.Trigger.SEGMENT_JOINED:
            return {"segment": data["join_segment"].pk}
        return {}

    def save(self, commit=True):
        journey = super().save(commit=False)
        journey.trigger_params = self.trigger_params()
        journey.exit_rules = list(self.cleaned_data.get("exit_rules") or [])
        kind = self.cleaned_data.get("goal_kind")
        journey.goal = {"kind": kind, "days": self.cleaned_data["goal_days"]} if kind else {}
        if journey.reentry != Journey.Reentry.AFTER_DAYS:
            journey.reentry_days = None
        if commit:
            journey.save()
        return journey
