"""End to end through a real Celery worker and the Redis broker: capture → commit → task → mail."""

import os
import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.core import mail
from django.db import connections

from config.celery import app
from customers.models import ConsentConfirmation, ConsentMethod, Source
from customers.services import ConsentRequest, customer_capture
from customers.services.consent import Evidence


@pytest.fixture
def redis_broker():
    if not settings.REDIS_URL:
        message = "needs Redis (set REDIS_URL or run scripts/test)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    app.control.purge()  # messages other tests left behind name rows that no longer exist


def _close_worker_connections(**kwargs):
    connections.close_all()  # worker threads must not keep the test database open


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_confirmation_mail_after_commit(redis_broker, store, clerk, disclosures):
    task_postrun.connect(_close_worker_connections, weak=False)
    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=15):
            result = customer_capture(
                email="ana@example.com",
                first_name="Ana",
                source=Source.STORE,
                store=store,
                clerk=clerk,
                consents=[ConsentRequest(channel="email", disclosure=disclosures["email"])],
                evidence=Evidence(method=ConsentMethod.CHECKOUT, store=store, collected_by=clerk),
            )
            confirmation = ConsentConfirmation.objects.get(customer=result.customer)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                confirmation.refresh_from_db()
                if confirmation.status == ConsentConfirmation.Status.SENT:
                    break
                time.sleep(0.1)
    finally:
        task_postrun.disconnect(_close_worker_connections)

    assert confirmation.status == ConsentConfirmation.Status.SENT
    assert confirmation.attempts == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ana@example.com"]
    assert mail.outbox[0].from_email == settings.TRANSACTIONAL_FROM_EMAIL
