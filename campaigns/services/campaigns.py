"""Campaign writes: changes with their audit trail, the status machine, scheduling, duplication."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from campaigns import events
from campaigns.composer import variant_compiled
from campaigns.exceptions import CampaignError, NotReadyError, TransitionError
from campaigns.models import Campaign, Message, Segment, Variant
from campaigns.rendering import RenderError, TemplateProblem

Status = Campaign.Status
Timing = Campaign.Timing

# Every move the status may make; anything else is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.SCHEDULED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.DRAFT, Status.SENDING, Status.PAUSED, Status.CANCELLED}),
    Status.SENDING: frozenset({Status.PAUSED, Status.SENT, Status.CANCELLED}),
    Status.PAUSED: frozenset({Status.SENDING, Status.SCHEDULED, Status.CANCELLED}),
    Status.SENT: frozenset(),
    Status.CANCELLED: frozenset(),
}
# The moves staff make by hand; the sending engine alone starts sending and marks a campaign sent
# (resuming a paused campaign is the one way staff put it back to sending).
STAFF_MOVES: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.SCHEDULED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.DRAFT, Status.PAUSED, Status.CANCELLED}),
    Status.SENDING: frozenset({Status.PAUSED, Status.CANCELLED}),
    Status.PAUSED: frozenset({Status.SENDING, Status.SCHEDULED, Status.CANCELLED}),
    Status.SENT: frozenset(),
    Status.CANCELLED: frozenset(),
}
_TRACKED_FIELDS = (
    "name",
    "goal",
    "kpi",
    "kpi_target",
    "category",
    "message",
    "channels",
    "mode",
    "holdout_percent",
    "holdout_mode",
    "offer",
    "coupon_mode",
    "shared_code",
)


def _display(value) -> object:
    if hasattr(value, "pk"):
        return str(value)
    if isinstance(value, (list, tuple, set, QuerySet)):
        return sorted(str(item) for item in value)
    return value if isinstance(value, (int, str, type(None))) else str(value)


def campaign_snapshot(campaign: Campaign) -> dict:
    """The audited fields as plain values (segments included, for an existing campaign)."""
    data = {field: _display(getattr(campaign, field, None)) for field in _TRACKED_FIELDS}
    data["channels"] = campaign.channel_list  # the order is the point: not sorted like other lists
    if campaign.pk:
        data["include_segments"] = _display(campaign.include_segments.all())
        data["exclude_segments"] = _display(campaign.exclude_segments.all())
        data["holdout_stores"] = _display(campaign.holdout_stores.all())
    return data


@transaction.atomic
def campaign_record_changes(*, campaign: Campaign, actor, before: dict | None) -> dict:
    """Record what changed since ``before`` (a ``campaign_snapshot``); ``None`` means just created.

    Call after the admin (or any caller) has saved the campaign and its segments, in the same
    transaction. Returns the changes recorded. (Callers refuse edits once sending has started:
    ``Campaign.is_editable``.)
    """
    after = campaign_snapshot(campaign)
    if before is None:
        events.campaign_created_event(campaign=campaign, actor=actor)
        return after
    changes = {key: [before.get(key), value] for key, value in after.items() if before.get(key) != value}
    if changes:
        events.campaign_changed_event(campaign=campaign, actor=actor, changes=changes)
    return changes


def campaign_problems(campaign: Campaign) -> list[str]:
    """Why ``campaign`` cannot be scheduled yet (empty when it can)."""
    problems = []
    if not campaign.include_segments.exists():
        problems.append("Choose at least one segment to send to.")
    channels = campaign.channel_list
    defaults = {v.channel: v for v in campaign.message.variants.filter(persona__isnull=True)}
    for channel in channels:
        variant = defaults.get(channel)
        if variant is None:
            problems.append(f"The message has no default {channel} variant.")
            continue
        try:
            variant.full_clean()
            variant_compiled(variant)
        except ValidationError as exc:
            details = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            problems.append(f"The default {channel} variant has errors: {details}")
        except (TemplateProblem, RenderError) as exc:
            problems.append(f"The default {channel} variant has errors: {exc}")
    if campaign.holds_out_stores and not campaign.holdout_stores.exists():
        problems.append("Choose the stores whose customers are held back, or hold back a share of customers.")
    problems.extend(_offer_problems(campaign, list(campaign.message.variants.all())))
    if campaign.category == Campaign.Category.TRANSACTIONAL and campaign.message.is_marketing:
        problems.append("A transactional campaign needs a transactional message.")
    if campaign.category != Campaign.Category.TRANSACTIONAL and not campaign.message.is_marketing:
        problems.append("A marketing campaign cannot send a transactional message.")
    return problems


def _offer_problems(campaign: Campaign, variants) -> list[str]:
    uses_code = any("coupon_code" in (getattr(v, f) or "") for v in variants for f in _CODE_FIELDS)
    offer = campaign.offer
    if offer is None:
        return ["The message shows {{ coupon_code }} but the campaign has no offer."] if uses_code else []
    problems = []
    if not offer.is_active or offer.valid_until <= timezone.now():
        problems.append(f"The offer {offer} is inactive or has ended.")
    # Unique codes need no check here: launching generates whatever the offer lacks (see the forecast).
    if not uses_code:
        problems.append("The campaign has an offer but no variant shows {{ coupon_code }}.")
    return problems


_CODE_FIELDS = ("subject", "preheader", "html_body", "text_body", "sms_body", "push_title", "push_body", "push_url")


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


@transaction.atomic
def campaign_transition(*, campaign: Campaign, to: str, actor, note: str = "", row_locked: bool = False) -> Campaign:
    """Move the status along ``TRANSITIONS`` (locks the campaign row; records the change).

    ``row_locked``: the caller read ``campaign`` with ``select_for_update`` in this transaction, so it is
    changed as it is, without reading the row again. Raises ``TransitionError`` for a move the machine
    does not allow, changing nothing.
    """
    locked = campaign if row_locked else _locked(campaign)
    old = locked.status
    if to not in TRANSITIONS.get(old, frozenset()):
        raise TransitionError(
            f"A {locked.get_status_display().lower()} campaign cannot become {Status(to).label.lower()}."
        )
    now = timezone.now()
    locked.status = to
    fields = ["status", "updated_at"]
    if to == Status.SENDING and locked.started_at is None:
        locked.started_at = now
        fields.append("started_at")
    if to in (Status.SENT, Status.CANCELLED):
        locked.finished_at = now
        fields.append("finished_at")
    if to == Status.DRAFT:
        locked.scheduled_at = locked.local_send_date = locked.local_send_time = None
        fields.extend(["scheduled_at", "local_send_date", "local_send_time"])
    locked.save(update_fields=fields)
    events.campaign_status_changed_event(campaign=locked, actor=actor, old=old, new=to, note=note)
    campaign.status, campaign.started_at, campaign.finished_at = locked.status, locked.started_at, locked.finished_at
    campaign.scheduled_at = locked.scheduled_at
    return locked


def _schedule_times(*, timing: str, at: datetime | None, local_at: datetime | None, now: datetime):
    """``(scheduled_at, local wall time or None)`` for a timing choice; raises ``CampaignError``."""
    from campaigns.delivery.local_time import earliest_release

    if timing == Timing.NOW:
        return now, None
    if timing == Timing.LOCAL:
        if local_at is None:
            raise CampaignError("Give the local send time, e.g. 2030-12-05 10:00 (in each customer's zone).")
        if timezone.is_aware(local_at):
            raise CampaignError("A local send time is a wall-clock time: give it without a time zone.")
        local_at = local_at.replace(second=0, microsecond=0)
        first = earliest_release(local_at)
        if first <= now:
            raise CampaignError(
                f"{local_at:%Y-%m-%d %H:%M} has already come in some zones (the first reaches it at "
                f"{first:%Y-%m-%d %H:%M} UTC); choose a later local time."
            )
        return first, local_at
    if timing != Timing.AT:
        raise CampaignError("Choose when to send: now, at a time, or at a local time in each customer's zone.")
    if at is None:
        raise CampaignError("Give the send time, e.g. 2030-01-31 09:00.")
    if timezone.is_naive(at):
        raise CampaignError("Give the send time with its time zone.")
    if at <= now:
        raise CampaignError("The send time must be in the future.")
    return at, None


@transaction.atomic
def campaign_schedule(
    *,
    campaign: Campaign,
    at: datetime | None,
    actor,
    timing: str = Campaign.Timing.AT,
    local_at: datetime | None = None,
) -> Campaign:
    """Schedule a draft after checking it is complete: now, ``at`` (aware, in the future), or at the wall
    time ``local_at`` (naive) in each recipient's zone.

    A local-time campaign is launched at the first instant any zone reaches ``local_at`` (UTC+14); its
    deliveries then each wait for ``local_at`` in their recipient's zone (``campaigns.delivery.local_time``).
    Locks the campaign row before checking, so a concurrent change cannot slip between the check and
    the move. Raises ``NotReadyError`` listing every problem, ``TransitionError``, or ``CampaignError``
    for a missing or past time; changes nothing then.
    """
    now = timezone.now()
    scheduled_at, wall = _schedule_times(timing=timing, at=at, local_at=local_at, now=now)
    locked = _locked(campaign)
    if Status.SCHEDULED not in TRANSITIONS[locked.status]:
        raise TransitionError(f"A {locked.get_status_display().lower()} campaign cannot be scheduled.")
    problems = campaign_problems(locked)
    if problems:
        raise NotReadyError(problems)
    note = f"at {wall:%Y-%m-%d %H:%M} in each recipient's zone" if wall else f"for {scheduled_at.isoformat()}"
    locked = campaign_transition(campaign=campaign, to=Status.SCHEDULED, actor=actor, note=note)
    locked.scheduled_at = scheduled_at
    locked.timing = timing
    locked.local_send_date = wall.date() if wall else None
    locked.local_send_time = wall.time() if wall else None
    locked.schedule_zone = timezone.get_current_timezone_name()
    locked.save(
        update_fields=["scheduled_at", "timing", "local_send_date", "local_send_time", "schedule_zone", "updated_at"]
    )
    campaign.scheduled_at, campaign.timing = scheduled_at, timing
    campaign.local_send_date, campaign.local_send_time = locked.local_send_date, locked.local_send_time
    campaign.schedule_zone = locked.schedule_zone
    return locked


@transaction.atomic
def campaign_duplicate(*, campaign: Campaign, actor) -> Campaign:
    """A new draft with the same settings and a copy of the message and its variants."""
    message = campaign.message
    copy_message = Message.objects.create(
        name=f"{message.name} (copy)"[:200], purpose=message.purpose, created_by=_user(actor)
    )
    variants = list(message.variants.all())
    for variant in variants:
        variant.pk = None
        variant.message = copy_message
    Variant.objects.bulk_create(variants)
    copy = Campaign.objects.create(
        name=f"{campaign.name} (copy)"[:200],
        goal=campaign.goal,
        kpi=campaign.kpi,
        kpi_target=campaign.kpi_target,
        category=campaign.category,
        message=copy_message,
        channels=campaign.channel_list,
        mode=campaign.mode,
        holdout_percent=campaign.holdout_percent,
        holdout_mode=campaign.holdout_mode,
        offer=campaign.offer,
        coupon_mode=campaign.coupon_mode,
        shared_code=campaign.shared_code,
        duplicated_from=campaign,
        created_by=_user(actor),
    )
    copy.include_segments.set(campaign.include_segments.all())
    copy.exclude_segments.set(campaign.exclude_segments.all())
    copy.holdout_stores.set(campaign.holdout_stores.all())
    events.campaign_duplicated_event(campaign=copy, original=campaign, actor=actor)
    return copy


def campaign_staff_moves(campaign: Campaign) -> list[str]:
    """The statuses staff may move ``campaign`` to by hand now (scheduling included)."""
    return [status for status in Status.values if status in STAFF_MOVES[campaign.status]]


@transaction.atomic
def campaign_status_change(
    *,
    campaign: Campaign,
    to: str,
    actor,
    at: datetime | None = None,
    timing: str = Campaign.Timing.AT,
    local_at: datetime | None = None,
) -> Campaign:
    """A move staff asked for: schedule a draft (``campaign_schedule``'s timing choices), or pause,
    resume, cancel, unschedule.

    Locks the campaign row and checks the move there against ``STAFF_MOVES`` (the engine's own moves,
    such as marking a campaign sent, are refused). Cancelling also cancels its queued deliveries.
    Raises ``TransitionError`` or ``CampaignError``
    (``NotReadyError`` when scheduling an incomplete draft); nothing changes then.
    """
    if to not in Status.values:
        raise TransitionError("Unknown status.")
    locked = _locked(campaign)
    if to not in STAFF_MOVES[locked.status]:
        raise TransitionError(
            f"A {locked.get_status_display().lower()} campaign cannot become {Status(to).label.lower()} by hand."
        )
    if to == Status.SCHEDULED and locked.status == Status.DRAFT:
        result = campaign_schedule(campaign=locked, at=at, actor=actor, timing=timing, local_at=local_at)
    else:
        result = campaign_transition(campaign=locked, to=to, actor=actor)
    if to == Status.CANCELLED:
        from campaigns.delivery.operations import campaign_deliveries_cancel

        # Queued rows go at once (the claim already refuses them); the progress panel shows it now.
        campaign_deliveries_cancel(campaign_id=result.pk)
    campaign.status, campaign.scheduled_at = result.status, result.scheduled_at
    campaign.started_at, campaign.finished_at = result.started_at, result.finished_at
    return result


@transaction.atomic
def campaign_save(
    *,
    campaign: Campaign,
    actor,
    include_segments: Iterable[Segment] | None = None,
    exclude_segments: Iterable[Segment] | None = None,
    holdout_stores: Iterable | None = None,
) -> Campaign:
    """Create or edit a campaign with its segments (and held-out stores), and record what changed in the audit trail.

    Locks the campaign row of an existing campaign and refuses (``CampaignError``, nothing stored) once
    it has left the editable statuses. The status is never changed here: it moves through
    ``campaign_status_change``. A campaign without a message gets a new one named after it.
    """
    created = campaign.pk is None
    before = None
    if not created:
        stored = _locked(campaign)
        if not stored.is_editable:
            raise CampaignError(f"{stored} has started sending and can no longer change.")
        before = campaign_snapshot(stored)
        campaign.status, campaign.scheduled_at = stored.status, stored.scheduled_at
    else:
        campaign.status = Status.DRAFT
        campaign.created_by = _user(actor)
    if campaign.message_id is None:
        campaign.message = Message.objects.create(name=campaign.name[:200], created_by=_user(actor))
    campaign.save()
    if include_segments is not None:
        campaign.include_segments.set(include_segments)
    if exclude_segments is not None:
        campaign.exclude_segments.set(exclude_segments)
    if holdout_stores is not None:
        campaign.holdout_stores.set(holdout_stores)
    campaign_record_changes(campaign=campaign, actor=actor, before=before)
    return campaign


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None
