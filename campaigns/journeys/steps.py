"""The step list of a journey version: checking it before it is published, reading it when it runs."""

from __future__ import annotations

import re
from datetime import timedelta

from customers.models import Channel

KINDS = ("send", "wait", "wait_until", "branch", "coupon", "points", "attribute", "exit")
ENGAGEMENTS = ("opened", "clicked", "redeemed")
# The order channels are tried in when a step names none: the first one that reaches a customer wins.
DEFAULT_CHANNEL_ORDER = (Channel.EMAIL, Channel.SMS, Channel.PUSH)
EXIT = "exit"
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class JourneyStepsError(ValueError):
    """The steps cannot be published; ``problems`` lists every reason, in plain words."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def step_targets(step: dict) -> list[str]:
    """The keys a step may lead to (absent ones left out)."""
    if step.get("kind") == "branch":
        return [target for target in (step.get("yes"), step.get("no")) if target]
    return [step["next"]] if step.get("next") else []


def steps_by_key(steps: list[dict]) -> dict[str, dict]:
    return {step["key"]: step for step in steps}


def wait_duration(step: dict) -> timedelta:
    return timedelta(
        days=float(step.get("days") or 0), hours=float(step.get("hours") or 0), minutes=float(step.get("minutes") or 0)
    )


def send_channels(step: dict) -> list[str]:
    return list(step.get("channels") or DEFAULT_CHANNEL_ORDER)


def _check_shape(steps: list) -> list[str]:
    problems: list[str] = []
    if not isinstance(steps, list) or not steps:
        return ["A journey needs at least one step."]
    seen: set[str] = set()
    for position, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            problems.append(f"Step {position} is not a step.")
            continue
        key, kind = step.get("key"), step.get("kind")
        if not isinstance(key, str) or not _KEY.match(key):
            problems.append(f"Step {position} needs a key of letters, digits, '-' or '_' (at most 64).")
        elif key in seen:
            problems.append(f"Two steps share the key {key!r}.")
        else:
            seen.add(key)
        if kind not in KINDS:
            problems.append(f"Step {key!r} has an unknown kind {kind!r}.")
            continue
        problems.extend(_check_kind(step, key, kind))
    return problems


def _check_kind(step: dict, key, kind: str) -> list[str]:
    problems = []
    if kind == "send":
        if not isinstance(step.get("message"), int):
            problems.append(f"Step {key!r} sends no message.")
        channels = step.get("channels")
        if channels is not None and (
            not isinstance(channels, list) or not channels or any(c not in Channel.values for c in channels)
        ):
            problems.append(f"Step {key!r} names an unknown channel.")
    elif kind == "wait":
        try:
            if wait_duration(step) <= timedelta(0):
                problems.append(f"Step {key!r} waits for no time.")
        except (TypeError, ValueError):
            problems.append(f"Step {key!r} waits for a duration that is not a number.")
    elif kind == "wait_until":
        if not isinstance(step.get("time"), str) or not _TIME.match(step["time"]):
            problems.append(f"Step {key!r} needs a time of day as HH:MM.")
        weekdays = step.get("weekdays")
        if weekdays is not None and (
            not isinstance(weekdays, list) or not weekdays or any(day not in range(7) for day in weekdays)
        ):
            problems.append(f"Step {key!r} has weekdays outside 0 (Monday) to 6 (Sunday).")
    elif kind == "branch":
        problems.extend(_check_condition(step.get("condition"), key))
    elif kind == "coupon":
        if not isinstance(step.get("offer"), int):
            problems.append(f"Step {key!r} names no offer.")
    elif kind == "points":
        points = step.get("points")
        if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= 1_000_000:
            problems.append(f"Step {key!r} needs a whole number of points between 1 and 1,000,000.")
    elif kind == "attribute":
        if not isinstance(step.get("name"), str) or not step["name"].strip() or len(step["name"]) > 64:
            problems.append(f"Step {key!r} needs an attribute name.")
        if not isinstance(step.get("value", ""), str | int | float | bool):
            problems.append(f"Step {key!r} sets an attribute to a value that is not text or a number.")
    return problems


def _check_condition(condition, key) -> list[str]:
    if not isinstance(condition, dict) or len(condition) not in (1, 2):
        return [f"Branch {key!r} needs one condition."]
    if "segment" in condition:
        return [] if isinstance(condition["segment"], int) else [f"Branch {key!r} names no segment."]
    if "rules" in condition:
        return [] if isinstance(condition["rules"], dict) else [f"Branch {key!r} has rules that are not rules."]
    if "engaged" in condition:
        if condition["engaged"] not in ENGAGEMENTS or not isinstance(condition.get("step"), str):
            return [f"Branch {key!r} needs opened, clicked or redeemed and the send step it looks at."]
        return []
    if "random" in condition:
        share = condition["random"]
        if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
            return [f"Branch {key!r} needs a split between 0 and 100 per cent."]
        return []
    return [f"Branch {key!r} has an unknown condition."]


def _check_graph(steps: list[dict]) -> list[str]:
    problems = []
    keys = steps_by_key(steps)
    for step in steps:
        for target in step_targets(step):
            if target != EXIT and target not in keys:
                problems.append(f"Step {step['key']!r} leads to {target!r}, which is not a step.")
        if step.get("kind") == "branch" and step.get("condition", {}).get("engaged"):
            looked_at = keys.get(step["condition"].get("step"))
            if looked_at is None or looked_at.get("kind") != "send":
                problems.append(f"Branch {step['key']!r} looks at a step that sends nothing.")
    if problems:
        return problems
    # Depth-first search for a way back to a step already on the path: a loop would step forever.
    state: dict[str, int] = {}

    def visit(key: str) -> bool:
        state[key] = 1
        for target in step_targets(keys[key]):
            if target == EXIT:
                continue
            if state.get(target) == 1 or (state.get(target) is None and visit(target)):
                return True
        state[key] = 2
        return False

    for key in keys:
        if state.get(key) is None and visit(key):
            return ["The steps loop back on themselves; every path must end."]
    return []


def _check_references(steps: list[dict]) -> list[str]:
    from campaigns.models import Message, Segment, Variant
    from loyalty.models import Offer

    problems = []
    messages = {step["message"] for step in steps if step["kind"] == "send"}
    segments = {
        step["condition"]["segment"] for step in steps if step["kind"] == "branch" and "segment" in step["condition"]
    }
    offers = {step["offer"] for step in steps if step["kind"] == "coupon"}
    known_messages = set(Message.objects.filter(pk__in=messages).values_list("pk", flat=True))
    with_variants = set(Variant.objects.filter(message_id__in=messages).values_list("message_id", flat=True))
    for message in sorted(messages):
        if message not in known_messages:
            problems.append(f"Message {message} does not exist.")
        elif message not in with_variants:
            problems.append(f"Message {message} has no content on any channel yet.")
    for segment in sorted(segments - set(Segment.objects.filter(pk__in=segments).values_list("pk", flat=True))):
        problems.append(f"Segment {segment} does not exist.")
    for offer in sorted(offers - set(Offer.objects.filter(pk__in=offers).values_list("pk", flat=True))):
        problems.append(f"Offer {offer} does not exist.")
    for step in steps:
        if step["kind"] == "branch" and "rules" in step["condition"]:
            from django.utils import timezone

            from campaigns.segments import segment_q

            try:
                segment_q(step["condition"]["rules"], now=timezone.now())
            except Exception as exc:  # the rule grammar's own error, in its words
                problems.append(f"Branch {step['key']!r}: {exc}")
    return problems


def steps_validate(steps) -> None:
    """Raise ``JourneyStepsError`` listing every problem with ``steps``; a handful of queries."""
    problems = _check_shape(steps)
    if not problems:
        problems = _check_graph(steps)
    if not problems:
        problems = _check_references(steps)
    if problems:
        raise JourneyStepsError(problems)
