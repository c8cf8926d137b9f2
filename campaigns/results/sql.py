"""The few pieces of SQL the ORM cannot say portably: date arithmetic, and grouping over a grouped query."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet

from loyalty.customer_record import REFUND_KEY_PREFIX
from loyalty.models import LedgerEntry


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


def dt(value: datetime):
    """A datetime as the database driver wants it for a raw parameter."""
    return connection.ops.adapt_datetimefield_value(value)


def minus(column: str, window: timedelta) -> tuple[str, list]:
    """SQL for ``column - window`` on PostgreSQL and SQLite (stored there as ISO text in UTC)."""
    if connection.vendor == "postgresql":
        return f"({column} - %s)", [window]
    return f"datetime({column}, %s)", [f"-{int(window.total_seconds())} seconds"]


def rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def subquery(queryset: QuerySet) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    return f"({sql})", list(params)


def refunded() -> Exists:
    """A purchase refunded through loyalty (a REVERSE entry with the refund key); refunds are whole."""
    return Exists(
        LedgerEntry.objects.filter(
            purchase_id=OuterRef("pk"), kind=LedgerEntry.Kind.REVERSE, idempotency_key__startswith=REFUND_KEY_PREFIX
        )
    )


def refunded_sql(purchase_alias: str) -> str:
    table = qn(LedgerEntry._meta.db_table)
    return (
        f"EXISTS (SELECT 1 FROM {table} le WHERE le.purchase_id = {purchase_alias}.id "  # noqa: S608
        f"AND le.kind = '{LedgerEntry.Kind.REVERSE}' AND le.idempotency_key LIKE '{REFUND_KEY_PREFIX}%%')"
    )
