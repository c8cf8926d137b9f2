"""The goal dashboard (an admin page listed in the index) and the campaign page's results and CSVs."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils.text import slugify

from campaigns.models import GoalDashboard
from campaigns.results import charts
from campaigns.results.periods import period_from
from campaigns.results.rollups import rollups_refreshed_at
from campaigns.results.selectors import DEFAULT_ATTRIBUTION_WINDOW, goal_dashboard
from campaigns.results.tables import Table, find_table, table_csv

GOALS = [
    ("awareness", "Awareness"),
    ("engagement", "Engagement"),
    ("conversion", "Conversion"),
    ("loyalty", "Loyalty"),
    ("health", "Channel health"),
]
MAX_WINDOW_DAYS = 90


def csv_response(table: Table, *, prefix: str) -> HttpResponse:
    response = HttpResponse(table_csv(table), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slugify(prefix)}-{table.key}.csv"'
    return response


def window_from(value: str | None) -> timedelta:
    try:
        days = int(value or 0)
    except ValueError:
        days = 0
    if 1 <= days <= MAX_WINDOW_DAYS:
        return timedelta(days=days)
    return DEFAULT_ATTRIBUTION_WINDOW


def _number(value) -> float:
    return float(value or 0)


def dashboard_charts(tables: dict[str, list[Table]]) -> dict[str, object]:
    """A chart for the tables that read best as one, keyed by table; drawn from the same rows as the CSV."""
    found = {table.key: table for group in tables.values() for table in group}
    drawn = {}
    source = found["new_by_source"]
    drawn["new_by_source"] = charts.bar_chart(
        title="New profiles by source",
        items=[(row[0], row[2]) for row in source.rows],
        compare=[row[3] for row in source.rows],
    )
    revenue = found["revenue"]
    drawn["revenue"] = charts.bar_chart(
        title="Revenue (net of refunds)",
        items=[(row[0], _number(row[2])) for row in revenue.rows],
        compare=[_number(row[3]) for row in revenue.rows],
    )
    reachable = found["reachable"]
    drawn["reachable"] = charts.bar_chart(title="Reachable today", items=[(row[0], row[1]) for row in reachable.rows])
    optin = found["optin_store"]
    drawn["optin_store"] = charts.bar_chart(
        title="Opt-in at checkout", items=[(row[0], row[3] or 0) for row in optin.rows], unit=" %"
    )
    conversion = found["message_conversion"]
    drawn["message_conversion"] = charts.bar_chart(
        title="Attributed revenue per campaign and channel",
        items=[(f"{row[0]} · {row[1]} · {row[2]}", _number(row[7])) for row in conversion.rows][:12],
    )
    repeat = found["repeat"]
    drawn["repeat"] = charts.bar_chart(
        title="Repeat purchase rate",
        items=[(row[0], row[3] or 0) for row in repeat.rows],
        compare=[row[4] or 0 for row in repeat.rows],
        unit=" %",
    )
    drawn["health"] = health_chart(found["health"])
    if "nps_trend" in found:
        trend = found["nps_trend"]
        drawn["nps_trend"] = charts.score_chart(
            title=trend.title + " (-100 to +100)", labels=trend.column("from"), values=trend.column("NPS")
        )
    return drawn


def health_chart(table: Table):
    days = table.column("day")
    return charts.line_chart(
        title="Complaint, bounce, unsubscribe and STOP rates per day",
        days=days,
        series=[
            ("complaints", table.column("complaint %")),
            ("bounces", table.column("bounce %")),
            ("unsubscribes", table.column("unsubscribe %")),
            ("STOPs", table.column("STOP %")),
        ],
        lines=[("0.1 % complaint limit", 0.1), ("0.3 % never reach", 0.3)],
    )


def _csv_base(request) -> str:
    query = request.GET.copy()
    query.pop("export", None)
    encoded = query.urlencode()
    return f"?{encoded}&export=" if encoded else "?export="


def funnel_chart(results) -> object:
    """The campaign's funnel as bars, each step's count written at its end."""
    totals = results.totals
    steps = [
        ("audience", "Audience"),
        ("reachable", "Reachable"),
        ("sent", "Sent"),
        ("delivered", "Delivered"),
        ("opened", "Opened"),
        ("clicked", "Clicked"),
        ("redeemed", "Redeemed"),
        ("purchases", "Purchased"),
    ]
    return charts.bar_chart(title="Funnel", items=[(label, totals.get(key, 0)) for key, label in steps])


def results_tables(results) -> list[Table]:
    """The campaign's result tables in the order the page shows them (and the CSV links name them)."""
    optional = [table for table in (results.cost, results.lift) if table is not None]
    return [results.funnel, results.skipped, results.kpi, *optional]


def campaign_results_context(campaign, request) -> dict:
    """What the campaign page's Results panel shows; a fixed number of queries."""
    from campaigns.results.funnel import campaign_results

    results = campaign_results(campaign=campaign, window=window_from(request.GET.get("window")))
    return {
        "results": results,
        "results_tables": [
            (table, funnel_chart(results) if table.key == "funnel" else None) for table in results_tables(results)
        ],
        "results_revenue": results.totals["revenue"],
    }


def campaign_results_csv(campaign, request) -> HttpResponse:
    from campaigns.results.funnel import campaign_results

    results = campaign_results(campaign=campaign, window=window_from(request.GET.get("window")))
    table = find_table(results_tables(results), request.GET.get("table", ""))
    if table is None:
        raise Http404("No such table.")
    return csv_response(table, prefix=f"campaign-{campaign.pk}")


@admin.register(GoalDashboard)
class GoalDashboardAdmin(admin.ModelAdmin):
    """Listed in the index as "Goal dashboard"; its list page is the dashboard (read-only)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise Http404
        period, problem = period_from(request.GET.get("from"), request.GET.get("to"))
        window = window_from(request.GET.get("window"))
        tables = goal_dashboard(period, window=window)
        export = request.GET.get("export")
        if export:
            table = find_table([table for group in tables.values() for table in group], export)
            if table is None:
                raise Http404("No such table.")
            return csv_response(table, prefix=f"goal-dashboard-{period.first_day}-{period.last_day}")
        drawn = dashboard_charts(tables)
        context = {
            **self.admin_site.each_context(request),
            "title": "Goal dashboard",
            "opts": self.model._meta,
            "period": period,
            "previous": period.previous,
            "problem": problem,
            "window_days": window.days,
            "goals": [(key, label, [(table, drawn.get(table.key)) for table in tables[key]]) for key, label in GOALS],
            "csv_base": _csv_base(request),
            "refreshed_at": rollups_refreshed_at(),
        }
        return TemplateResponse(request, "admin/campaigns/results/dashboard.html", context)
