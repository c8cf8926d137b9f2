"""The audit trail: one append-only ``AuditEvent`` per change, written by services only."""

from __future__ import annotations

from campaigns.models import AuditEvent


def _event(*, subject, action: str, actor, changes: dict | None = None, campaign=None) -> AuditEvent:
    return AuditEvent.objects.create(
        campaign=campaign,
        subject_type=subject._meta.model_name,
        subject_id=subject.pk,
        subject_label=str(subject)[:200],
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        changes=changes or {},
    )


def campaign_created_event(*, campaign, actor) -> AuditEvent:
    return _event(subject=campaign, campaign=campaign, action=AuditEvent.Action.CREATED, actor=actor)


def campaign_changed_event(*, campaign, actor, changes: dict) -> AuditEvent:
    return _event(subject=campaign, campaign=campaign, action=AuditEvent.Action.CHANGED, actor=actor, changes=changes)


def campaign_status_changed_event(*, campaign, actor, old: str, new: str, note: str = "") -> AuditEvent:
    changes = {"status": [old, new]}
    if note:
        changes["note"] = note
    return _event(
        subject=campaign, campaign=campaign, action=AuditEvent.Action.STATUS_CHANGED, actor=actor, changes=changes
    )


def campaign_duplicated_event(*, campaign, original, actor) -> AuditEvent:
    return _event(
        subject=campaign,
        campaign=campaign,
        action=AuditEvent.Action.DUPLICATED,
        actor=actor,
        changes={"from_campaign": original.pk},
    )


def message_changed_event(*, subject, actor, changes: dict, created: bool = False, campaign=None) -> AuditEvent:
    action = AuditEvent.Action.CREATED if created else AuditEvent.Action.CHANGED
    return _event(subject=subject, campaign=campaign, action=action, actor=actor, changes=changes)


def variant_test_sent_event(*, variant, actor, to: str, campaign=None) -> AuditEvent:
    return _event(
        subject=variant, campaign=campaign, action=AuditEvent.Action.TEST_SENT, actor=actor, changes={"to": to}
    )


def segment_list_uploaded_event(*, segment, actor, matched: int, unmatched: int) -> AuditEvent:
    return _event(
        subject=segment,
        action=AuditEvent.Action.LIST_UPLOADED,
        actor=actor,
        changes={"matched": matched, "unmatched": unmatched},
    )


def segment_changed_event(*, segment, actor, changes: dict, created: bool = False) -> AuditEvent:
    action = AuditEvent.Action.CREATED if created else AuditEvent.Action.CHANGED
    return _event(subject=segment, action=action, actor=actor, changes=changes)


def journey_published_event(*, journey, actor, version, moves: dict, old_status: str) -> AuditEvent:
    """A version of the steps went live; ``moves`` says where people on removed steps went."""
    changes = {"version": version.number}
    if moves:
        changes["moves"] = moves
    if old_status != journey.status:
        changes["status"] = [old_status, journey.status]
    return _event(subject=journey, action=AuditEvent.Action.PUBLISHED, actor=actor, changes=changes)


def journey_status_changed_event(*, journey, actor, old: str, new: str) -> AuditEvent:
    """Paused, resumed, drained or archived."""
    return _event(subject=journey, action=AuditEvent.Action.STATUS_CHANGED, actor=actor, changes={"status": [old, new]})
