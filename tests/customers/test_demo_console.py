"""The demo's console stays readable: one line per 4xx, mails not tagged WARNING, no SDK request dumps,
and the logins printed last."""

import io
import logging
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.factories.customers import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def test_django_warnings_are_printed_once():
    # Django's default "django" handler would print each record a second time next to the root's.
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate


@pytest.mark.django_db
def test_a_refused_till_submit_logs_no_request_warning(client, clerk, disclosures, caplog):
    client.login(username=clerk.username, password=PASSWORD)
    caplog.set_level(logging.DEBUG)  # the root's level: what reaches the console is up to django.request
    response = client.post(reverse("till:capture"), {})
    assert response.status_code == 400
    assert not [record for record in caplog.records if record.name == "django.request"]


@pytest.mark.parametrize("name", ["twilio.http_client", "urllib3", "botocore", "google", "firebase_admin"])
def test_sdk_request_logs_are_quiet(name):
    assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


def test_mail_printed_by_the_worker_is_not_a_warning():
    from config.celery import app

    assert app.conf.worker_redirect_stdouts_level == "INFO"


def test_the_demo_prints_the_logins_after_starting_the_processes():
    script = (ROOT / "scripts/demo").read_text()
    starts = script.index("exec .venv/bin/honcho")
    prints = script.index("print_logins_when_up &")
    assert prints < starts  # started in the background, printed once the web server answers
    body = script[script.index("print_logins_when_up() {") : prints]
    assert "demo_seed --logins" in body
    assert body.index("urlopen") < body.index("demo_seed --logins")


@pytest.mark.django_db
def test_demo_seed_can_print_only_the_logins():
    out = io.StringIO()
    call_command("demo_seed", "--logins", stdout=out)
    text = out.getvalue()
    assert re.search(r"clerk-nyc\s+demo-clerk-pass", text)
    assert "marketing" in text
    assert "Demo data ready" not in text
