"""A table is what every chart is drawn from and what every CSV export writes, so the two never differ."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from decimal import Decimal

from customers.services.exporting import csv_safe


@dataclasses.dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[object]]
    note: str = ""

    def column(self, name: str) -> list[object]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def money(value) -> Decimal:
    """A sum of amounts as a two-place Decimal (SQLite returns sums of decimals as floats)."""
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def ratio(numerator, denominator) -> float | None:
    """``numerator / denominator`` as a float, or None when there is nothing to divide by."""
    if not denominator:
        return None
    return float(numerator or 0) / float(denominator)


def percent(numerator, denominator, digits: int = 1) -> float | None:
    value = ratio(numerator, denominator)
    return None if value is None else round(100 * value, digits)


def change(current, previous) -> str:
    """The change from the previous period in words a marketer reads: ``+12.5 %``, ``new``, ``-``."""
    if current is None or previous is None:
        return "-"
    current, previous = Decimal(str(current)), Decimal(str(previous))
    if previous == 0:
        return "-" if current == 0 else "new"
    return f"{(current - previous) * 100 / abs(previous):+.1f} %"


def table_csv(table: Table) -> str:
    """The table as CSV text, every cell through ``csv_safe`` (formula injection: OWASP "CSV injection")."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_safe(name) for name in table.columns])
    for row in table.rows:
        writer.writerow([csv_safe("" if cell is None else cell) for cell in row])
    return out.getvalue()


def find_table(tables: Sequence[Table], key: str) -> Table | None:
    return next((table for table in tables if table.key == key), None)
