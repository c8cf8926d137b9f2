"""With the demo data, a marketer reads the goal dashboard and one campaign's funnel; screenshots kept."""

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from campaigns.management.commands.results_demo_seed import NAME
from campaigns.models import Campaign
from tests.factories import MarketingUserFactory
from tests.factories.customers import PASSWORD

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


def test_dashboard_and_funnel_with_demo_data(live_server, page, tmp_path):
    for command in ("demo_seed", "loyalty_demo_seed", "campaigns_demo_seed", "results_demo_seed"):
        call_command(command, stdout=(tmp_path / f"{command}.log").open("w"))
    campaign = Campaign.objects.get(name=NAME)
    user = MarketingUserFactory(email="results@staff.example.com")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1000})

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.get_by_role("link", name="Goal dashboard").first.click()

    expect(page.locator("h1")).to_contain_text("Goal dashboard")
    expect(page.locator("#goal-conversion")).to_contain_text(NAME)
    expect(page.locator("#goal-health svg")).to_contain_text("0.1 % complaint limit")
    expect(page.locator("#table-sms_cost")).to_contain_text("USD")
    expect(page.locator("#table-nps_trend svg")).to_contain_text("NPS per week")
    page.screenshot(path=str(SHOTS / "results-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/?step=results")
    results = page.locator("#campaign-results")
    expect(results).to_contain_text("Funnel per channel and persona")
    expect(results).to_contain_text("Lift against the holdout")
    expect(page.locator("#table-cost")).to_contain_text("USD")
    results.scroll_into_view_if_needed()
    results.screenshot(path=str(SHOTS / "results-funnel.png"))
