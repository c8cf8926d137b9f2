"""The minutely tick: enrol from the triggers, then step every due enrolment, set-based.

Due enrolments are claimed in batches (``FOR UPDATE SKIP LOCKED``, each moving journey's in due
order), so two ticks at once share the work and never hold the same enrolment. In the batch's one
transaction: the exit rules are re-checked (a few UPDATEs), then each group of enrolments on the same
step of the same version runs it: its ``JourneyStepRun`` rows are inserted ``ON CONFLICT DO NOTHING
RETURNING`` (only runs inserted now act, so a step never acts twice for one enrolment), the step acts
for the whole group (deliveries in one INSERT, a due time, a branch's two halves…), and whoever goes
on to a step due now runs it in the same batch (exit rules checked again first); only where each
stops (a wait, the end, an exit) is written. A crash anywhere before the commit leaves nothing done;
the chunk tasks of the deliveries are published only after it. The number of statements depends on
the number of journeys and (version, step) groups in a batch, never on the number of enrolments.

Every statement of a batch reaches its rows by key: the claim reads a range of an index in its own
order, the batch's ids travel as one array parameter or one JSON row source, and the batch tells the
planner its pages are in memory, so no statement reads every enrolment or step run. That keeps a
batch's cost flat as those tables grow to millions of rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections import Counter, defaultdict

from django.db import connection, transaction
from django.db.models import Exists, F, Lookup, OuterRef, Q, Subquery
from django.utils import timezone

from campaigns.journeys.steps import EXIT, send_channels, steps_by_key, wait_duration
from campaigns.models import Delivery, Enrolment, Journey, JourneyStepRun, JourneyVersion
from customers.models import Customer, Purchase

logger = logging.getLogger(__name__)

ACTIVE = Enrolment.Status.ACTIVE
MOVING = (Journey.Status.LIVE, Journey.Status.DRAINING)
BATCH_SIZE = 5000


@dataclasses.dataclass
class TickResult:
    enrolled: int = 0
    stepped: int = 0
    exited: Counter = dataclasses.field(default_factory=Counter)
    runs: Counter = dataclasses.field(default_factory=Counter)
    batches: int = 0


@dataclasses.dataclass(frozen=True)
class SendPlan:
    """What the audience checks read from a cause, for a journey's send step."""

    category: str
    channel_list: list[str]
    mode: str = "preferred"
    when_capped: str = ""


class _AnyOf(Lookup):
    """``column = ANY(%s)`` with the ids as ONE array parameter: a list of thousands of placeholders
    costs more to build, send and parse than the statement's own work. Typed ``bigint[]`` like the
    keys, so that where the planner filters rows by it (stale statistics) it hashes the array rather
    than comparing each row with every id."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(CAST(%s AS bigint[]))", [*lhs_params, self.rhs]


def _among(ids, field: str = "pk") -> Q:
    """Rows whose ``field`` is one of ``ids``, as a filter (one array parameter on PostgreSQL)."""
    ids = list(ids)
    if connection.vendor == "postgresql":
        return Q(_AnyOf(F(field), ids))
    return Q(**{f"{field}__in": ids})


def _in(column: str, ids) -> tuple[str, list]:
    ids = list(ids)
    if connection.vendor == "postgresql":
        return f"{column} = ANY(CAST(%s AS bigint[]))", [ids]
    return f"{column} IN ({', '.join(['%s'] * len(ids)) or 'NULL'})", ids


def _row_source(columns: dict[str, str], rows: list[dict]) -> tuple[str, list]:
    """``rows`` as a row source ``v`` with the given (name → PostgreSQL type) columns, in ONE JSON
    parameter whatever their number; its params. Read straight from the parameter, never from a table
    filtered by a list of ids (which the planner may answer by reading the whole table)."""
    payload = json.dumps(rows)
    if connection.vendor == "postgresql":
        spec = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        return f"jsonb_to_recordset(CAST(%s AS jsonb)) AS v({spec})", [payload]
    picked = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in columns)
    return f"(SELECT {picked} FROM json_each(%s)) AS v", [payload]  # noqa: S608 (fixed column names)


def journeys_tick(
    *, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, max_batches: int = 1000
) -> TickResult:
    """One tick: triggers, then due enrolments in batches until none is due (or ``max_batches``)."""
    from campaigns.journeys.triggers import journeys_enrol_due

    now = now or timezone.now()
    result = TickResult()
    result.enrolled = sum(journeys_enrol_due(now=now).values())
    goals_count(now=now)
    for _ in range(max_batches):
        stepped = enrolments_step_batch(now=now, batch_size=batch_size, result=result)
        if not stepped:
            break
        result.batches += 1
    return result


def goals_count(*, now: dt.datetime) -> int:
    """Set ``converted_at`` where a journey's goal was met (a purchase within N days of entry).

    One UPDATE per journey with a goal, over enrolments still inside the goal's window. Counted, not
    an exit (unless the journey lists "goal" among its exit rules: the step batch exits them).
    """
    converted = 0
    for journey in Journey.objects.filter(status__in=(*MOVING, Journey.Status.PAUSED)).exclude(goal={}):
        goal = journey.goal or {}
        if goal.get("kind") != "purchase":
            continue
        days = dt.timedelta(days=int(goal.get("days") or 14))
        first = Purchase.objects.filter(
            customer_id=OuterRef("customer_id"), occurred_at__gt=OuterRef("entered_at"), occurred_at__lte=now
        )
        first = first.filter(occurred_at__lte=OuterRef("entered_at") + days).order_by("occurred_at")
        converted += (
            Enrolment.objects.filter(journey=journey, converted_at__isnull=True, entered_at__gte=now - days)
            .filter(Exists(first))
            .update(converted_at=Subquery(first.values("occurred_at")[:1]))
        )
    return converted


def _claim(*, now: dt.datetime, batch_size: int) -> list[tuple]:
    """The due enrolments, locked: rows ``(id, journey_id, version_id, step_key, customer_id, gone)``,
    ``gone`` when the customer is erased or merged (only those rows need the checks that join them).

    One statement per moving journey until the batch is full, each a range of ``enrolment_journey_due``
    (journey, due_at, id) read in the order it asks for and stopped at the LIMIT, whatever the
    statistics say and however many enrolments wait in other (e.g. paused) journeys. The journey's
    status is read again inside the claim, so a pause committed before it holds everyone still.
    ``gone`` is a scalar subquery, one primary-key probe per claimed row: a join to customers could be
    planned as a scan of every customer."""
    table = connection.ops.quote_name(Enrolment._meta.db_table)
    journeys = connection.ops.quote_name(Journey._meta.db_table)
    customers = connection.ops.quote_name(Customer._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    statement = (
        "SELECT e.id, e.journey_id, e.version_id, e.step_key, e.customer_id, "  # noqa: S608
        "(SELECT c.erased_at IS NOT NULL OR c.merged_into_id IS NOT NULL "
        f"FROM {customers} c WHERE c.id = e.customer_id) FROM {table} e "
        "WHERE e.journey_id = %s AND e.status = %s AND e.due_at <= %s "
        f"AND EXISTS (SELECT 1 FROM {journeys} j WHERE j.id = %s AND j.status IN (%s, %s)) "
        f"ORDER BY e.due_at, e.id LIMIT %s{lock}"
    )
    due = connection.ops.adapt_datetimefield_value(now)
    claimed: list[tuple] = []
    moving = Journey.objects.filter(status__in=MOVING).order_by("pk").values_list("pk", flat=True)
    with connection.cursor() as cursor:
        for journey_id in moving:
            cursor.execute(statement, [journey_id, ACTIVE, due, journey_id, *MOVING, batch_size - len(claimed)])
            claimed.extend(cursor.fetchall())
            if len(claimed) >= batch_size:
                break
    return claimed


def _exit(ids_q: Q, reason: str, now: dt.datetime) -> int:
    return Enrolment.objects.filter(ids_q, status=ACTIVE).update(
        status=Enrolment.Status.EXITED, exit_reason=reason, finished_at=now, due_at=None
    )


def _journey_channels(versions: dict[int, JourneyVersion]) -> dict[int, set[str]]:
    """Per journey: the channels its send steps' messages have content for (one query)."""
    from campaigns.models import Variant

    messages_by_journey: dict[int, set[int]] = defaultdict(set)
    for version in versions.values():
        messages_by_journey[version.journey_id] |= {s["message"] for s in version.steps if s["kind"] == "send"}
    wanted = {m for ms in messages_by_journey.values() for m in ms}
    by_message: dict[int, set[str]] = defaultdict(set)
    for message_id, channel in Variant.objects.filter(message_id__in=wanted).values_list("message_id", "channel"):
        by_message[message_id].add(channel)
    return {j: {c for m in ms for c in by_message[m]} for j, ms in messages_by_journey.items()}


def _exit_rules(
    members, gone: list[int], journeys: dict[int, Journey], versions, now: dt.datetime, result: TickResult
) -> int:
    """Re-check, before any step runs, what ends an enrolment; a few UPDATEs per journey in the batch.

    ``members`` are the batch's (enrolment, customer) pairs; ``gone`` the enrolments whose customer was
    erased or merged when claimed: only they are exited or moved to the survivor. The consent and
    segment checks read the batch's customers only, never the whole population. Returns how many
    enrolments changed (exited or moved).
    """
    from campaigns.audience import segment_member_q
    from campaigns.segments import consent_granted_q

    changed = 0
    if gone:
        erased = _exit(_among(gone) & Q(customer__erased_at__isnull=False), "erased", now)
        moved = _merged_move(gone)
        merged = _exit(_among(gone) & Q(customer__merged_into__isnull=False), "merged", now)
        result.exited["erased"] += erased
        result.exited["merged"] += merged
        changed += erased + moved + merged
    claimed = _among(pk for pk, _ in members)
    batch_customers = _among({customer for _, customer in members})
    exited_before = sum(result.exited.values())
    channels = _journey_channels(versions)
    for journey in journeys.values():
        rules = set(journey.exit_rules or [])
        mine = claimed & Q(journey_id=journey.pk)
        if "purchase" in rules:
            bought = Purchase.objects.filter(
                customer_id=OuterRef("customer_id"), occurred_at__gt=OuterRef("entered_at")
            )
            result.exited["purchase"] += _exit(mine & Q(Exists(bought)), "purchase", now)
        if "consent_withdrawn" in rules and channels.get(journey.pk):
            unreachable = Q()
            for channel in sorted(channels[journey.pk]):
                unreachable &= ~Q(consent_granted_q(channel))
            gone = Customer.objects.filter(batch_customers, unreachable).values("pk")
            result.exited["consent_withdrawn"] += _exit(mine & Q(customer_id__in=gone), "consent_withdrawn", now)
        if "left_segment" in rules and journey.entry_segment_id:
            inside = Customer.objects.filter(batch_customers, segment_member_q(journey.entry_segment, now=now))
            result.exited["left_segment"] += _exit(mine & ~Q(customer_id__in=inside.values("pk")), "left_segment", now)
        if "goal" in rules:
            result.exited["converted"] += _exit(mine & Q(converted_at__isnull=False), "converted", now)
    return changed + sum(result.exited.values()) - exited_before


def _merged_move(ids: list[int]) -> int:
    """An enrolment of a merged profile continues on the survivor, once: unless the survivor already
    has an active enrolment in that journey (or one with the same entry), which the caller then exits."""
    table = connection.ops.quote_name(Enrolment._meta.db_table)
    customers = connection.ops.quote_name(Customer._meta.db_table)
    in_sql, in_params = _in(f"{table}.id", ids)
    statement = (
        f"UPDATE {table} SET customer_id = c.merged_into_id FROM {customers} c "  # noqa: S608
        f"WHERE c.id = {table}.customer_id AND c.merged_into_id IS NOT NULL AND {in_sql} AND {table}.status = %s "
        f"AND NOT EXISTS (SELECT 1 FROM {table} other "
        f"WHERE other.journey_id = {table}.journey_id AND other.customer_id = c.merged_into_id "
        f"AND (other.status = %s OR other.entry_key = {table}.entry_key)) "
        # two merged profiles' enrolments moving onto one survivor at once: only the first moves
        f"AND {table}.id = (SELECT MIN(twin.id) FROM {table} twin JOIN {customers} tc ON tc.id = twin.customer_id "
        f"WHERE twin.journey_id = {table}.journey_id AND tc.merged_into_id = c.merged_into_id AND twin.status = %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*in_params, ACTIVE, ACTIVE, ACTIVE])
        return max(cursor.rowcount, 0)


def enrolments_step_batch(*, now: dt.datetime, batch_size: int, result: TickResult | None = None) -> int:
    """Claim up to ``batch_size`` due enrolments and run their current step; returns how many were claimed."""
    result = result if result is not None else TickResult()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # For this transaction only: every statement of a batch reads or writes its few thousand
                # rows by key, in pages already in memory. At the default random_page_cost (4, disks that
                # seek) the planner would rather read all 1 M enrolments or step runs than probe 10,000
                # keys, so each batch cost more as the tables grew; and JIT compiles longer than these
                # statements run.
                cursor.execute("SELECT set_config('random_page_cost', '1.1', true), set_config('jit', 'off', true)")
        claimed = _claim(now=now, batch_size=batch_size)
        if not claimed:
            return 0
        ids = [row[0] for row in claimed]
        journeys = Journey.objects.select_related("entry_segment").in_bulk({row[1] for row in claimed})
        versions = JourneyVersion.objects.in_bulk({row[2] for row in claimed})
        gone = [row[0] for row in claimed if row[5]]
        if _exit_rules([(row[0], row[4]) for row in claimed], gone, journeys, versions, now, result):
            # someone exited or moved to a survivor: read the rest as they are now
            claimed = Enrolment.objects.filter(_among(ids), status=ACTIVE).values_list(
                "pk", "journey_id", "version_id", "step_key", "customer_id"
            )
        groups: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
        for pk, _journey_id, version_id, step_key, customer_id, *_ in claimed:
            groups[(version_id, step_key)].append((pk, customer_id))
        # Whoever a step sends on to another step runs it in this batch, without being claimed (and
        # written) again in between: only where they stop (a wait, the end, an exit) is written. Steps
        # form no loop (publishing refuses them), so this ends within as many rounds as there are steps.
        for _ in range(1 + max(len(version.steps) for version in versions.values())):
            onward: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
            for (version_id, step_key), members in sorted(groups.items()):
                version = versions[version_id]
                step = steps_by_key(version.steps).get(step_key)
                if step is None:  # unreachable after a checked publish; never leave anyone stuck on it
                    result.exited["step_missing"] += _exit(_among(pk for pk, _ in members), "step_missing", now)
                    continue
                for target, moving in _step_run(journeys[version.journey_id], version, step, members, now, result):
                    onward[(version_id, target)].extend(moving)
                result.stepped += len(members)
            groups = _still_inside(onward, journeys, versions, now, result)
            if not groups:
                break
        for (_version_id, step_key), members in groups.items():  # (never, but nobody is left unwritten)
            _advance([pk for pk, _ in members], step_key, now)
        return len(ids)


def _still_inside(groups, journeys: dict[int, Journey], versions, now: dt.datetime, result: TickResult):
    """``groups`` less whoever the exit rules, checked again before their next step, take out."""
    if not groups or not any(journeys[versions[version_id].journey_id].exit_rules for version_id, _ in groups):
        return groups
    chained = [member for members in groups.values() for member in members]
    ids = [pk for pk, _ in chained]
    if not _exit_rules(chained, [], journeys, versions, now, result):
        return groups
    inside = set(Enrolment.objects.filter(_among(ids), status=ACTIVE).values_list("pk", flat=True))
    kept = {key: [member for member in members if member[0] in inside] for key, members in groups.items()}
    return {key: members for key, members in kept.items() if members}


def _runs_insert(
    version: JourneyVersion, step: dict, enrolment_ids: list[int], outcome: str | dict[int, str], now
) -> dict[int, int]:
    """Insert the step's runs ON CONFLICT DO NOTHING; {enrolment id: run id} of those inserted now.

    ``outcome`` is one for all, or one per enrolment id (decided before the insert, so that no run is
    written twice)."""
    if not enrolment_ids:
        return {}
    table = connection.ops.quote_name(JourneyStepRun._meta.db_table)
    outcome_of = outcome if isinstance(outcome, dict) else dict.fromkeys(enrolment_ids, outcome)
    source, source_params = _row_source(
        {"enrolment_id": "bigint", "outcome": "text"},
        [{"enrolment_id": pk, "outcome": outcome_of[pk]} for pk in enrolment_ids],
    )
    # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint.
    statement = (
        f"INSERT INTO {table} (enrolment_id, step_key, kind, version_id, outcome, ran_at) "  # noqa: S608
        f"SELECT v.enrolment_id, %s, %s, %s, v.outcome, %s FROM {source} WHERE true "
        "ON CONFLICT DO NOTHING RETURNING enrolment_id, id"
    )
    params = [step["key"], step["kind"], version.pk, connection.ops.adapt_datetimefield_value(now)]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, *source_params])
        return dict(cursor.fetchall())


def _advance(enrolment_ids, target: str | None, now: dt.datetime, *, due_at=None) -> None:
    """Move enrolments to ``target`` (None: completed; "exit": exited), due at ``due_at`` (default now)."""
    if not enrolment_ids:
        return
    chosen = Enrolment.objects.filter(_among(enrolment_ids), status=ACTIVE)
    if target is None:
        chosen.update(status=Enrolment.Status.COMPLETED, step_key="", finished_at=now, due_at=None)
    elif target == EXIT:
        chosen.update(
            status=Enrolment.Status.EXITED, exit_reason="exit_step", step_key="", finished_at=now, due_at=None
        )
    else:
        chosen.update(step_key=target, due_at=due_at or now)


def _step_run(journey: Journey, version: JourneyVersion, step: dict, members, now, result: TickResult):
    """Run ``step`` for ``members``; returns ``(next step key, members)`` pairs for those who go on
    to another step now (the caller runs it). Whoever stops here is written here."""
    kind = step["kind"]
    ids = [pk for pk, _ in members]
    customer_of = dict(members)
    if kind == "branch":
        yes = branch_yes(journey, step, members, now)
        ran_yes = _runs_insert(version, step, [pk for pk in ids if pk in yes], "yes", now)
        ran_no = _runs_insert(version, step, [pk for pk in ids if pk not in yes], "no", now)
        result.runs[f"{kind}"] += len(ran_yes) + len(ran_no)
        return [
            *_onward([m for m in members if m[0] in yes], step.get("yes"), now),
            *_onward([m for m in members if m[0] not in yes], step.get("no"), now),
        ]
    if kind in ("wait", "wait_until"):
        return _wait(version, step, members, now, result)
    target = step.get("next") or None
    if kind == "send":
        result.runs[kind] += _send(journey, version, step, ids, customer_of, now)
        return _onward(members, target, now)
    outcome = {"exit": "exited", "attribute": "set"}.get(kind, "")
    ran = _runs_insert(version, step, ids, outcome, now)
    result.runs[kind] += len(ran)
    if kind == "coupon":
        _coupon(journey, step, ran, customer_of, now)
    elif kind == "points":
        _points(journey, step, ran, customer_of, now)
    elif kind == "attribute":
        _attribute(step, ran, customer_of)
    elif kind == "exit":
        _advance(ids, EXIT, now)
        return []
    return _onward(members, target, now)


def _onward(members, target: str | None, now: dt.datetime) -> list[tuple[str, list]]:
    """Members done with a step: completed (no ``target``) or exited now, else going on to ``target``."""
    if not members:
        return []
    if target is None or target == EXIT:
        _advance([pk for pk, _ in members], target, now)
        return []
    return [(target, members)]


def _wait(version: JourneyVersion, step: dict, members, now: dt.datetime, result: TickResult):
    """A wait keeps people on its step, so the diagram and the timeline show them waiting there.

    Arriving inserts the step's run (the wait started), puts the enrolment on the step and makes it due
    when the wait ends; an enrolment due again whose run is already there has waited, and goes on. Both
    in this transaction.
    """
    ids = [pk for pk, _ in members]
    arrived = _runs_insert(version, step, ids, "waited", now)
    result.runs[step["kind"]] += len(arrived)
    if step["kind"] == "wait":
        _advance(list(arrived), step["key"], now, due_at=now + wait_duration(step))
    elif arrived:
        _due_at_local(list(arrived), step, now)
    return _onward([m for m in members if m[0] not in arrived], step.get("next") or None, now)


def branch_yes(journey: Journey, step: dict, members, now: dt.datetime) -> set[int]:
    """The enrolments of ``members`` taking "yes"; one query (none for a random split)."""
    from campaigns.audience import segment_member_q
    from campaigns.models import Segment
    from campaigns.segments import segment_q

    condition = step["condition"]
    ids = [pk for pk, _ in members]
    if "random" in condition:
        # Deterministic per enrolment (Knuth's multiplicative hash), so a re-run decides the same way.
        return {pk for pk in ids if (pk * 2654435761) % 2**32 % 100 < condition["random"]}
    if "segment" in condition or "rules" in condition:
        if "segment" in condition:
            segment = Segment.objects.filter(pk=condition["segment"]).first()
            q = segment_member_q(segment, now=now) if segment else Q(pk__in=[])
        else:
            q = segment_q(condition["rules"], now=now)
        inside = set(
            Customer.objects.filter(q, _among({customer for _, customer in members})).values_list("pk", flat=True)
        )
        return {pk for pk, customer in members if customer in inside}
    engaged = condition["engaged"]
    runs = JourneyStepRun.objects.filter(_among(ids, "enrolment_id"), step_key=condition["step"])
    deliveries = Delivery.objects.filter(
        cause_type=Delivery.Cause.JOURNEY_STEP,
        cause_id__in=runs.values("pk"),
        customer_id=OuterRef("enrolment__customer_id"),
    )
    if engaged == "opened":
        deliveries = deliveries.filter(Q(opened_at__isnull=False) | Q(clicked_at__isnull=False))
    elif engaged == "clicked":
        deliveries = deliveries.filter(clicked_at__isnull=False)
    else:
        from loyalty.models import CouponCode

        # A code issued by this journey to the customer and used since.
        used = CouponCode.objects.filter(
            issue_reference__startswith=f"journey:{journey.pk}:",
            uses__gt=0,
            account__customer_id=OuterRef("customer_id"),
        )
        return set(Enrolment.objects.filter(_among(ids)).filter(Exists(used)).values_list("pk", flat=True))
    deliveries = deliveries.filter(cause_id=OuterRef("pk"))
    return set(runs.filter(Exists(deliveries)).values_list("enrolment_id", flat=True))


def _send(journey: Journey, version: JourneyVersion, step: dict, ids: list[int], customer_of, now) -> int:
    """The step's runs and their deliveries; returns the number of runs inserted now.

    Who is reachable on which channel (the audience checks, one SELECT over the group's customers)
    is read first, so each run is inserted once with its outcome, "sent" or "unreachable"; then the
    deliveries of the runs inserted now go in ONE INSERT from a row source of (run, customer, channel,
    variant), never a join back to the step runs or enrolments. Chunk tasks are queued on commit."""
    from campaigns.audience import reachable_q, variant_choice
    from campaigns.delivery.conf import conf
    from campaigns.delivery.launch import _COLUMNS, chunks_enqueue
    from campaigns.models import Message

    message = Message.objects.get(pk=step["message"])
    available = set(message.variants.values_list("channel", flat=True))
    plan = SendPlan(category=journey.category, channel_list=[c for c in send_channels(step) if c in available])
    parts, params = [], []
    for channel in plan.channel_list:
        queryset = (
            Customer.objects.filter(_among({customer_of[pk] for pk in ids}))
            .filter(reachable_q(channel, plan, now=now))
            .order_by()
            .annotate(variant_pick=variant_choice(message, channel, now=now))
            .values_list("pk", "variant_pick")
        )
        sql, part_params = queryset.query.sql_with_params()
        parts.append(f"SELECT picked.pk, %s, picked.variant_pick FROM ({sql}) picked")  # noqa: S608
        params.extend([channel, *part_params])
    reach: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
    if parts:
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for customer_id, channel, variant_id in cursor.fetchall():
                reach[customer_id].append((channel, variant_id))
    outcomes = {pk: "sent" if customer_of[pk] in reach else "unreachable" for pk in ids}
    ran = _runs_insert(version, step, ids, outcomes, now)
    rows = [
        {
            "run_id": run_id,
            "enrolment_id": pk,
            "customer_id": customer_of[pk],
            "channel": channel,
            "variant_id": variant,
        }
        for pk, run_id in ran.items()
        for channel, variant in reach.get(customer_of[pk], ())
    ]
    if not rows:
        return len(ran)
    adapt = connection.ops.adapt_datetimefield_value
    table = connection.ops.quote_name(Delivery._meta.db_table)
    runs_table = connection.ops.quote_name(JourneyStepRun._meta.db_table)
    source, source_params = _row_source(
        {
            "run_id": "bigint",
            "enrolment_id": "bigint",
            "customer_id": "bigint",
            "channel": "text",
            "variant_id": "bigint",
        },
        rows,
    )
    lease = now + dt.timedelta(seconds=conf("DELIVERY_REDRIVE_AFTER_SECONDS"))
    statement = (
        f"INSERT INTO {table} ({_COLUMNS}) "  # noqa: S608
        "SELECT %s, v.run_id, v.customer_id, v.channel, %s, v.variant_id, "
        # the code of the enrolment's latest coupon step, for the message's {{ coupon_code }}
        f"(SELECT given.coupon_code_id FROM {runs_table} given WHERE given.enrolment_id = v.enrolment_id "
        # (by time, not by id: ordering by id would walk the runs' primary key, not the enrolment's)
        "AND given.coupon_code_id IS NOT NULL ORDER BY given.ran_at DESC, given.id DESC LIMIT 1), "
        "%s, '', '', '', '', 0, "
        f"NULL, %s, %s, %s, NULL FROM {source} WHERE true ON CONFLICT DO NOTHING RETURNING id"
    )
    head = [Delivery.Cause.JOURNEY_STEP, message.pk, Delivery.Status.QUEUED]
    with connection.cursor() as cursor:
        cursor.execute(statement, [*head, adapt(lease), adapt(now), adapt(now), *source_params])
        delivery_ids = sorted(delivery_id for (delivery_id,) in cursor.fetchall())
    size = conf("DELIVERY_CHUNK_SIZE")
    ranges = [
        (delivery_ids[start], delivery_ids[min(start + size, len(delivery_ids)) - 1])
        for start in range(0, len(delivery_ids), size)
    ]
    chunks_enqueue(cause_type=Delivery.Cause.JOURNEY_STEP, cause_id=journey.pk, ranges=ranges)
    return len(ran)


def _due_at_local(ids: list[int], step: dict, now: dt.datetime) -> None:
    """Each enrolment due at the step's next local time of day (on an allowed weekday) in its
    customer's zone: one zone-key query, Python per zone key, one UPDATE joining the small table."""
    from campaigns.delivery.local_time import (
        active_store_zones,
        default_schedule_zone,
        release_for_keys,
        release_table_sql,
        zone_key_sql,
    )

    customers = connection.ops.quote_name(Customer._meta.db_table)
    stores = connection.ops.quote_name("customers_store")
    table = connection.ops.quote_name(Enrolment._meta.db_table)
    in_sql, in_params = _in("e.id", ids)
    key_sql = zone_key_sql("c", "s")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key_sql}, MIN(c.phone), MAX(c.phone) FROM {table} e JOIN {customers} c ON c.id = e.customer_id "  # noqa: S608
            f"LEFT JOIN {stores} s ON s.id = c.home_store_id WHERE {in_sql} GROUP BY 1",
            in_params,
        )
        keys = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    hour, minute = (int(part) for part in step["time"].split(":"))
    weekdays = set(step.get("weekdays") or range(7))
    anywhere, zone = active_store_zones(), default_schedule_zone()
    best: dict[str, dt.datetime] = {}
    day = now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    while day <= now.astimezone(dt.UTC).date() + dt.timedelta(days=9):
        if day.weekday() in weekdays:
            releases = release_for_keys(
                wall=dt.datetime.combine(day, dt.time(hour, minute)), keys=keys, anywhere=anywhere, schedule_zone=zone
            )
            for key, instant in releases.items():
                if instant > now and key not in best:
                    best[key] = instant
        day += dt.timedelta(days=1)
    release_sql, release_params = release_table_sql(best)
    fallback = max(best.values())
    cast = "CAST(%s AS timestamp with time zone)" if connection.vendor == "postgresql" else "%s"
    in_sql, in_params = _in(f"{table}.id", ids)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET step_key = %s, due_at = COALESCE((SELECT r.release_at FROM ({release_sql}) r "  # noqa: S608
            f"JOIN {customers} c ON r.zone_key = {key_sql} LEFT JOIN {stores} s ON s.id = c.home_store_id "
            f"WHERE c.id = {table}.customer_id), {cast}) WHERE {in_sql}",
            [step["key"], *release_params, adapt(fallback), *in_params],
        )


def _coupon(journey: Journey, step: dict, ran: dict[int, int], customer_of, now: dt.datetime) -> None:
    """Issue one unique code of the step's offer per run, set-based through loyalty's services."""
    from loyalty.models import Offer
    from loyalty.services.coupons import (
        coupon_codes_issue,
        coupon_codes_top_up,
        coupon_codes_unissued,
        offer_codes_allotment_lock,
    )

    if not ran:
        return
    offer = Offer.objects.get(pk=step["offer"])
    reference = f"journey:{journey.pk}:{step['key']}"
    offer_codes_allotment_lock(offer)
    coupon_codes_top_up(offer=offer, needed=len(ran), reference=reference)
    codes_sql, codes_params = coupon_codes_unissued(offer).order_by().values("id").query.sql_with_params()
    runs = connection.ops.quote_name(JourneyStepRun._meta.db_table)
    enrolments = connection.ops.quote_name(Enrolment._meta.db_table)
    in_sql, in_params = _in("run.id", list(ran.values()))
    # Each run is given its own free code first (the allotment lock keeps the free codes still), so
    # the journey's later messages know which code is whose; then loyalty issues those codes.
    pairs = (
        "SELECT free.id AS code_id, wanting.run_id AS run_id FROM "  # noqa: S608
        f"(SELECT run.id AS run_id, ROW_NUMBER() OVER (ORDER BY run.id) AS n FROM {runs} run WHERE {in_sql}) wanting "
        f"JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM ({codes_sql}) c) free ON free.n = wanting.n"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {runs} SET coupon_code_id = pairs.code_id, outcome = %s FROM ({pairs}) pairs "  # noqa: S608
            f"WHERE {runs}.id = pairs.run_id",
            ["issued", *in_params, *codes_params],
        )
    holders = (
        f"SELECT run.coupon_code_id AS code_id, e.customer_id AS customer_id FROM {runs} run "  # noqa: S608
        f"JOIN {enrolments} e ON e.id = run.enrolment_id WHERE {in_sql} AND run.coupon_code_id IS NOT NULL"
    )
    coupon_codes_issue(offer=offer, holders_sql=holders, params=in_params, reference=reference, now=now)


def _points(journey: Journey, step: dict, ran: dict[int, int], customer_of, now: dt.datetime) -> None:
    """Bonus points through loyalty's ledger for the whole group at once, keyed by the step run (a
    repeat credits nothing); the runs record who had an account to credit."""
    from loyalty.models import LedgerEntry
    from loyalty.services.accounts import points_credit_many

    if not ran:
        return
    key_of = {run_id: f"journey_step:{run_id}" for run_id in ran.values()}
    credited = points_credit_many(
        credits=[(customer_of[enrolment_id], key_of[run_id]) for enrolment_id, run_id in ran.items()],
        points=int(step["points"]),
        kind=LedgerEntry.Kind.ADJUST,
        reason=(step.get("reason") or journey.name)[:300],
        occurred_at=now,
    )
    with_account = [run_id for run_id, key in key_of.items() if key in credited]
    JourneyStepRun.objects.filter(_among(with_account)).update(outcome="credited")
    JourneyStepRun.objects.filter(_among(set(key_of) - set(with_account))).update(outcome="no_account")


def _attribute(step: dict, ran: dict[int, int], customer_of) -> None:
    """Set one custom attribute on the group's profiles at once, through the customers service."""
    from customers.services.editing import customers_attribute_set

    if ran:
        customers_attribute_set(
            customer_ids={customer_of[pk] for pk in ran}, name=step["name"], value=step.get("value", "")
        )
