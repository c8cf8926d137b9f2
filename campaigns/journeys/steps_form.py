"""The steps of a journey as forms in plain words, so the marketer never writes the step JSON.

The editor holds the steps as a list of *raw* steps (form field name -> posted string or list), which
survive a round trip through the page unchanged, valid or not: "add step after" and "remove" re-render the
page from them without validating and without saving. Saving binds one ``StepForm`` per raw step, checks
each and then the whole graph (keys unique, every next/yes/no names a step of the list), and produces the
step JSON that ``campaigns.models.journeys`` documents.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json

from django import forms
from django.http import QueryDict

from campaigns.models import Message, Segment

END = ""  # the choice meaning "end of the journey" wherever a next step is chosen

KIND_LABELS = {
    "send": "Send a message",
    "wait": "Wait for a while",
    "wait_until": "Wait until a time of day",
    "branch": "Branch: yes or no",
    "coupon": "Give a coupon",
    "points": "Give bonus points",
    "attribute": "Set an attribute",
    "exit": "Leave the journey",
}
WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
CONDITIONS = [
    ("segment", "The customer is in a segment"),
    ("engaged", "The customer engaged with an earlier message"),
    ("random", "A random split (A/B test or holdout)"),
    ("rules", "The saved rules of this step (kept as they are)"),
]
ENGAGEMENTS = [("opened", "opened"), ("clicked", "clicked"), ("redeemed", "redeemed the offer of")]
UNITS = [("hours", "hours"), ("days", "days")]

# Which fields each kind shows, in order; the rest of the form stays empty.
FIELDS_BY_KIND = {
    "send": ["message", "next"],
    "wait": ["wait_amount", "wait_unit", "next"],
    "wait_until": ["time", "weekdays", "next"],
    "branch": ["condition", "segment", "engaged", "engaged_step", "random", "rules", "yes", "no"],
    "coupon": ["offer", "next"],
    "points": ["points", "reason", "next"],
    "attribute": ["attribute_name", "attribute_value", "next"],
    "exit": [],
}
CONDITION_OF_FIELD = {"segment": "segment", "engaged": "engaged", "engaged_step": "engaged", "random": "random"}
RAW_FIELDS = ["key", "kind", *sorted({name for names in FIELDS_BY_KIND.values() for name in names})]
LIST_FIELDS = {"weekdays"}
MAX_STEPS = 60


def _offers():
    from loyalty.models import Offer

    return Offer.objects.filter(is_active=True).order_by("name")


class StepForm(forms.Form):
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    kind = forms.ChoiceField(widget=forms.HiddenInput, choices=list(KIND_LABELS.items()))
    message = forms.ModelChoiceField(Message.objects.order_by("name"), required=False, label="Message")
    wait_amount = forms.IntegerField(required=False, min_value=1, max_value=8760, label="Wait")
    wait_unit = forms.ChoiceField(choices=UNITS, required=False, label="Unit")
    time = forms.TimeField(
        required=False, label="Until (the customer's local time)", widget=forms.TimeInput(attrs={"type": "time"})
    )
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple, label="On"
    )
    condition = forms.ChoiceField(choices=CONDITIONS, required=False, label="Yes when")
    segment = forms.ModelChoiceField(
        Segment.objects.filter(is_persona=False).order_by("name"), required=False, label="Segment"
    )
    engaged = forms.ChoiceField(choices=ENGAGEMENTS, required=False, label="They")
    engaged_step = forms.ChoiceField(choices=[], required=False, label="The message sent at")
    random = forms.IntegerField(required=False, min_value=1, max_value=99, label="Per cent taking yes")
    rules = forms.CharField(required=False, widget=forms.HiddenInput)
    offer = forms.ModelChoiceField(_offers(), required=False, label="Offer")
    points = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, label="Points")
    reason = forms.CharField(required=False, max_length=200, label="Reason shown on the ledger")
    attribute_name = forms.SlugField(required=False, max_length=64, label="Attribute")
    attribute_value = forms.CharField(required=False, max_length=200, label="Value")
    next = forms.ChoiceField(choices=[], required=False, label="Then go to")
    yes = forms.ChoiceField(choices=[], required=False, label="If yes, go to")
    no = forms.ChoiceField(choices=[], required=False, label="If no, go to")

    def __init__(self, *args, targets=(), send_steps=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["offer"].queryset = _offers()
        own = (self.initial.get("key") if not self.is_bound else self.data.get(self.add_prefix("key"))) or ""
        choices = [(END, "End of the journey")] + [(key, label) for key, label in targets if key != own]
        for name in ("next", "yes", "no"):
            self.fields[name].choices = choices
        self.fields["engaged_step"].choices = [("", "---------"), *send_steps]

    @property
    def kind_value(self) -> str:
        return (self.data.get(self.add_prefix("kind")) if self.is_bound else self.initial.get("kind")) or ""

    @property
    def key_value(self) -> str:
        return (self.data.get(self.add_prefix("key")) if self.is_bound else self.initial.get("key")) or ""

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind_value, self.kind_value)

    def kind_fields(self):
        """(bound field, the branch condition it belongs to or "") for the fields this step's kind shows."""
        for name in FIELDS_BY_KIND.get(self.kind_value, []):
            if name != "rules":  # carried as a hidden field
                yield self[name], CONDITION_OF_FIELD.get(name, "")

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        required = {
            "send": ["message"],
            "wait": ["wait_amount", "wait_unit"],
            "wait_until": ["time"],
            "branch": ["condition"],
            "coupon": ["offer"],
            "points": ["points"],
            "attribute": ["attribute_name"],
        }.get(kind, [])
        if kind == "branch":
            condition = data.get("condition")
            required += {"segment": ["segment"], "engaged": ["engaged", "engaged_step"], "random": ["random"]}.get(
                condition, []
            )
            if condition == "rules":
                try:
                    json.loads(data.get("rules") or "")
                except ValueError:
                    self.add_error("condition", "This step has no saved rules; choose another condition.")
        for name in required:
            if data.get(name) in (None, "", []):
                self.add_error(name, "Required for this step.")
        return data


@dataclasses.dataclass
class Names:
    """Names of the things steps point at by id, loaded once per page."""

    messages: dict[int, str]
    segments: dict[int, str]
    offers: dict[int, str]


def names_load(steps: list[dict]) -> Names:
    """The names of the messages, segments and offers ``steps`` use (three queries at most)."""
    from loyalty.models import Offer

    def ids(kind_field):
        found = set()
        for step in steps:
            value = step.get(kind_field) if kind_field != "segment" else (step.get("condition") or {}).get("segment")
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                found.add(int(value))
        return found

    message_ids, segment_ids, offer_ids = ids("message"), ids("segment"), ids("offer")
    return Names(
        messages=dict(Message.objects.filter(pk__in=message_ids).values_list("pk", "name")) if message_ids else {},
        segments=dict(Segment.objects.filter(pk__in=segment_ids).values_list("pk", "name")) if segment_ids else {},
        offers=dict(Offer.objects.filter(pk__in=offer_ids).values_list("pk", "name")) if offer_ids else {},
    )


def _duration(hours: int) -> str:
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours} hour{'s' if hours != 1 else ''}"


def _weekdays(days) -> str:
    days = sorted({int(day) for day in days or []})
    if not days or days == list(range(7)):
        return "any day"
    if days == [0, 1, 2, 3, 4]:
        return "a weekday"
    if days == [5, 6]:
        return "a weekend day"
    return ", ".join(dict(WEEKDAYS)[day] for day in days)


def step_summary(step: dict, names: Names, labels: dict[str, str] | None = None) -> str:
    """What the step does, in plain words (unescaped text: escape where it is shown)."""
    kind = step.get("kind")
    if kind == "send":
        return f"Send “{names.messages.get(_int(step.get('message')), 'a message not chosen yet')}”"
    if kind == "wait":
        hours = _int(step.get("hours"))
        return f"Wait {_duration(hours)}" if hours else "Wait"
    if kind == "wait_until":
        return f"Wait until {step.get('time') or '…'} on {_weekdays(step.get('weekdays'))}"
    if kind == "branch":
        condition = step.get("condition") or {}
        if "segment" in condition:
            return f"In segment “{names.segments.get(_int(condition['segment']), '…')}”?"
        if "engaged" in condition:
            verb = dict(ENGAGEMENTS).get(condition["engaged"], condition["engaged"])
            target = (labels or {}).get(condition.get("step"), condition.get("step") or "…")
            return f"{verb.capitalize()} “{target}”?"
        if "random" in condition:
            return f"Random split: {condition['random']}% yes, {100 - _int(condition['random'])}% no"
        if "rules" in condition:
            return "Matches the step's rules?"
        return "Branch"
    if kind == "coupon":
        return f"Give coupon “{names.offers.get(_int(step.get('offer')), '…')}”"
    if kind == "points":
        return f"Give {step.get('points') or '…'} bonus points"
    if kind == "attribute":
        return f"Set {step.get('name') or '…'} = {step.get('value', '')}"
    if kind == "exit":
        return "Leave the journey"
    return str(kind or "Step")


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def step_labels(steps: list[dict], names: Names) -> dict[str, str]:
    """Each step's key -> "N. what it does", the way the editor's selects and the diagram name it."""
    first = {step.get("key"): f"{index}. {step_summary(step, names)}" for index, step in enumerate(steps, 1)}
    return {step.get("key"): f"{index}. {step_summary(step, names, first)}" for index, step in enumerate(steps, 1)}


# --- step JSON <-> raw form values -----------------------------------------------------------------


def raw_from_step(step: dict) -> dict:
    """The form values showing ``step`` (the inverse of ``step_from_raw``)."""
    raw = {"key": step.get("key", ""), "kind": step.get("kind", "")}
    kind = raw["kind"]
    if kind == "send":
        raw["message"] = str(step.get("message") or "")
    elif kind == "wait":
        hours = _int(step.get("hours"))
        raw["wait_amount"], raw["wait_unit"] = (
            (str(hours // 24), "days") if hours and hours % 24 == 0 else (str(hours or ""), "hours")
        )
    elif kind == "wait_until":
        raw["time"] = step.get("time") or ""
        raw["weekdays"] = [str(day) for day in step.get("weekdays") or []]
    elif kind == "branch":
        condition = step.get("condition") or {}
        if "segment" in condition:
            raw.update(condition="segment", segment=str(condition["segment"]))
        elif "engaged" in condition:
            raw.update(condition="engaged", engaged=condition["engaged"], engaged_step=condition.get("step", ""))
        elif "random" in condition:
            raw.update(condition="random", random=str(condition["random"]))
        elif "rules" in condition:
            raw.update(condition="rules", rules=json.dumps(condition["rules"]))
        raw["yes"], raw["no"] = step.get("yes") or END, step.get("no") or END
    elif kind == "coupon":
        raw["offer"] = str(step.get("offer") or "")
    elif kind == "points":
        raw["points"], raw["reason"] = str(step.get("points") or ""), step.get("reason", "")
    elif kind == "attribute":
        raw["attribute_name"], raw["attribute_value"] = step.get("name", ""), step.get("value", "")
    if kind in FIELDS_BY_KIND and "next" in FIELDS_BY_KIND[kind]:
        raw["next"] = step.get("next") or END
    return raw


def step_from_raw(raw: dict) -> dict:
    """The step JSON for form values (lenient: a value that is not valid yet is left out)."""
    kind = raw.get("kind", "")
    step: dict = {"key": raw.get("key", ""), "kind": kind}
    if kind == "send" and _int(raw.get("message")):
        step["message"] = _int(raw["message"])
    elif kind == "wait" and _int(raw.get("wait_amount")):
        step["hours"] = _int(raw["wait_amount"]) * (24 if raw.get("wait_unit") == "days" else 1)
    elif kind == "wait_until":
        time = _time_text(raw.get("time"))
        if time:
            step["time"] = time
        step["weekdays"] = sorted({_int(day) for day in raw.get("weekdays") or [] if str(day).isdigit()})
    elif kind == "branch":
        condition = raw.get("condition") or "segment"
        if condition == "segment" and _int(raw.get("segment")):
            step["condition"] = {"segment": _int(raw["segment"])}
        elif condition == "engaged":
            step["condition"] = {"engaged": raw.get("engaged") or "opened", "step": raw.get("engaged_step") or ""}
        elif condition == "random" and _int(raw.get("random")):
            step["condition"] = {"random": _int(raw["random"])}
        elif condition == "rules" and raw.get("rules"):
            with contextlib.suppress(ValueError):
                step["condition"] = {"rules": json.loads(raw["rules"])}
        for name in ("yes", "no"):
            if raw.get(name):
                step[name] = raw[name]
    elif kind == "coupon" and _int(raw.get("offer")):
        step["offer"] = _int(raw["offer"])
    elif kind == "points":
        if _int(raw.get("points")):
            step["points"] = _int(raw["points"])
        step["reason"] = raw.get("reason") or ""
    elif kind == "attribute":
        step["name"], step["value"] = raw.get("attribute_name") or "", raw.get("attribute_value") or ""
    if kind != "branch" and kind != "exit" and raw.get("next"):
        step["next"] = raw["next"]
    return step


def _time_text(value) -> str:
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    try:
        return dt.time.fromisoformat(str(value or "")).strftime("%H:%M")
    except ValueError:
        return ""


def raws_from_post(data: QueryDict) -> list[dict]:
    """The raw steps as posted by the editor (``steps-count`` steps, prefixed ``step-<n>-``)."""
    count = min(_int(data.get("steps-count")), MAX_STEPS)
    raws = []
    for index in range(count):
        prefix = f"step-{index}-"
        raw = {}
        for name in RAW_FIELDS:
            raw[name] = data.getlist(prefix + name) if name in LIST_FIELDS else data.get(prefix + name, "")
        if raw["kind"] in KIND_LABELS:
            raws.append(raw)
    return raws


# --- editing the list ------------------------------------------------------------------------------


def new_key(kind: str, raws: list[dict]) -> str:
    taken = {raw.get("key") for raw in raws}
    stem = kind.replace("_", "-")
    number = 1
    while f"{stem}-{number}" in taken:
        number += 1
    return f"{stem}-{number}"


def raws_add_after(raws: list[dict], *, after: str, kind: str) -> list[dict]:
    """A new ``kind`` step after the step keyed ``after`` ("" = at the start), wired into the flow.

    The new step takes over where its predecessor went (its predecessor now goes to it); after a branch
    the new step is placed below it and left for the marketer to choose on the yes or no path.
    """
    if kind not in KIND_LABELS or len(raws) >= MAX_STEPS:
        return raws
    raws = [dict(raw) for raw in raws]
    new = raw_from_step({"key": new_key(kind, raws), "kind": kind})
    if kind == "wait":
        new.update(wait_amount="1", wait_unit="days")
    if kind == "wait_until":
        new.update(time="09:00", weekdays=[str(day) for day in range(7)])
    if kind == "branch":
        new.update(condition="segment")
    index = next((i for i, raw in enumerate(raws) if raw.get("key") == after), None)
    if index is None:  # at the start: it becomes the first step and leads to the former first
        following = raws[0]["key"] if raws else END
        _point(new, following)
        return [new, *raws]
    before = raws[index]
    if "next" in FIELDS_BY_KIND.get(before.get("kind"), []):
        _point(new, before.get("next") or END)
        before["next"] = new["key"]
    return [*raws[: index + 1], new, *raws[index + 1 :]]


def _point(raw: dict, target: str) -> None:
    if raw.get("kind") == "branch":
        raw["yes"], raw["no"] = target, target
    elif "next" in FIELDS_BY_KIND.get(raw.get("kind"), []):
        raw["next"] = target


def raws_remove(raws: list[dict], *, key: str) -> list[dict]:
    """The list without the step keyed ``key``; whatever led to it now leads where it led."""
    removed = next((raw for raw in raws if raw.get("key") == key), None)
    if removed is None:
        return raws
    onward = (removed.get("yes") if removed.get("kind") == "branch" else removed.get("next")) or END
    kept = []
    for raw in raws:
        if raw is removed:
            continue
        raw = dict(raw)
        for name in ("next", "yes", "no"):
            if raw.get(name) == key:
                raw[name] = onward
        if raw.get("engaged_step") == key:
            raw["engaged_step"] = ""
        kept.append(raw)
    return kept


# --- forms for a page ------------------------------------------------------------------------------


def _choices(raws: list[dict]) -> tuple[list[tuple[str, str]], list[tuple[str, str]], Names]:
    steps = [step_from_raw(raw) for raw in raws]
    names = names_load(steps)
    labels = step_labels(steps, names)
    targets = [(step["key"], labels[step["key"]]) for step in steps]
    sends = [(step["key"], labels[step["key"]]) for step in steps if step["kind"] == "send"]
    return targets, sends, names


def step_forms_unbound(raws: list[dict]) -> list[StepForm]:
    """Forms showing ``raws`` without judging them (after add/remove, or a fresh page)."""
    targets, sends, _names = _choices(raws)
    return [
        StepForm(initial=raw, prefix=f"step-{index}", targets=targets, send_steps=sends)
        for index, raw in enumerate(raws)
    ]


def step_forms_bound(raws: list[dict]) -> list[StepForm]:
    """Forms bound to ``raws`` (re-indexed), ready to validate."""
    targets, sends, _names = _choices(raws)
    forms_ = []
    for index, raw in enumerate(raws):
        data = QueryDict(mutable=True)
        for name, value in raw.items():
            if name in LIST_FIELDS:
                data.setlist(f"step-{index}-{name}", list(value or []))
            else:
                data[f"step-{index}-{name}"] = value or ""
        forms_.append(StepForm(data, prefix=f"step-{index}", targets=targets, send_steps=sends))
    return forms_


def steps_clean(forms_: list[StepForm]) -> tuple[list[dict], list[str]]:
    """The step JSON of valid forms, and the problems of the whole list (empty when it can be saved)."""
    problems: list[str] = []
    if not all(form.is_valid() for form in forms_):
        problems.append("Some steps need attention: see the messages under them.")
    steps = []
    for form in forms_:
        raw = {
            name: form.data.getlist(form.add_prefix(name))
            if name in LIST_FIELDS
            else form.data.get(form.add_prefix(name), "")
            for name in RAW_FIELDS
        }
        steps.append(step_from_raw(raw))
    if not steps:
        problems.append("Add at least one step.")
    keys = [step["key"] for step in steps]
    if len(set(keys)) != len(keys) or not all(keys):
        problems.append("Two steps share a key; remove one and add it again.")
    known = set(keys)
    sends_before: set[str] = set()
    for index, step in enumerate(steps, 1):
        for name in ("next", "yes", "no"):
            if step.get(name) and step[name] not in known:
                problems.append(f"Step {index} goes to a step that no longer exists.")
        engaged = (step.get("condition") or {}).get("step") if step["kind"] == "branch" else None
        if engaged is not None and engaged not in sends_before:
            problems.append(f"Step {index} must look at a message sent by an earlier step.")
        if step["kind"] == "send":
            sends_before.add(step["key"])
    return steps, problems
