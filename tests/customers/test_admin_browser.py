"""A marketer in a browser: import a CSV (check, confirm, progress), then find the customer and read the timeline."""

import pytest
from playwright.sync_api import expect

from customers.models import ConsentEvidence, Customer, CustomerImport
from tests.factories import MarketingUserFactory, StoreFactory
from tests.factories.customers import PASSWORD

CSV = (
    "email,phone,first_name,last_name,home_store,email_consent,sms_consent\n"
    "ada@example.com,(415) 555-0123,Ada,<b>Lovelace</b>,nyc-5th,yes,yes\n"
    "broken,,Bad,,,,\n"
)


@pytest.mark.browser
def test_marketer_imports_a_file_and_reads_the_timeline(live_server, page, monkeypatch, tmp_path):
    from customers import tasks
    from customers.services.importing import customer_import_run

    # No worker in the test: the enqueued run happens right away, in the web thread.
    monkeypatch.setattr(
        tasks.customer_import_run_task, "delay", lambda import_id: customer_import_run(import_id=import_id)
    )
    StoreFactory(code="nyc-5th", name="Fifth Avenue", time_zone="America/New_York")
    marketer = MarketingUserFactory()
    path = tmp_path / "people.csv"
    path.write_text(CSV)

    page.goto(f"{live_server.url}/admin/login/?next=/admin/customers/customerimport/add/")
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.set_input_files("#id_file", str(path))
    page.fill("#id_consent_basis", "Paper sign-up forms, spring fair")
    page.click("text=Check the file")
    expect(page.locator("#content-main")).to_contain_text("1 new profile(s)")
    expect(page.locator("#import-errors")).to_contain_text("3")
    expect(page.locator("#import-errors")).to_contain_text("email:")
    assert not Customer.objects.exists()

    page.click("text=Import 1 row(s)")
    expect(page.locator("#import-status")).to_have_text("Done")
    expect(page.locator("#content-main")).to_contain_text("2 / 2 rows (100 %)")
    assert CustomerImport.objects.get().status == CustomerImport.Status.DONE
    assert ConsentEvidence.objects.filter(method="import").count() == 2

    page.goto(f"{live_server.url}/admin/customers/customer/")
    page.fill("#searchbar", "415 555 0123")
    page.press("#searchbar", "Enter")
    page.click("text=Ada")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Email consent granted")
    expect(timeline).to_contain_text("Paper sign-up forms, spring fair")
    expect(timeline).to_contain_text("line 2")
    expect(page.locator("#id_last_name")).to_have_value("<b>Lovelace</b>")
