"""End to end through a real Celery worker process, Redis and PostgreSQL: scheduled -> sent, once."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from campaigns.models import Campaign, Delivery, OutboxMessage
from campaigns.tasks import campaigns_dispatch_due_task, deliveries_sweep_task, delivery_chunk_send_task
from config.celery import app
from tests.campaigns.delivery.conftest import ROOT, granted, process_database_url, sending_campaign, suppress
from tests.factories import CustomerFactory

QUEUES = ("celery", "dispatch", "sending")


def _purge() -> None:
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in QUEUES:
            channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            channel.queue_purge(queue)


@pytest.fixture
def worker(transactional_db, tmp_path):
    """A worker process like the Procfile's, on the test database and the test broker."""
    if not settings.REDIS_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("needs Redis (set REDIS_URL or run scripts/test)")
        pytest.skip("needs Redis (set REDIS_URL or run scripts/test)")
    _purge()
    env = {key: value for key, value in os.environ.items() if key not in ("EMAIL_BACKEND", "TANDEM_OUTBOX_CHANNELS")}
    env.update(DATABASE_URL=process_database_url(), REDIS_URL=settings.REDIS_URL, TANDEM_TESTING="1")
    env["PYTHONUNBUFFERED"] = "1"
    log = tmp_path / "worker.log"
    name = f"engine-test-{uuid.uuid4().hex[:8]}@%h"
    command = [sys.executable, "-m", "tests.campaigns.delivery.worker_main", "-A", "config", "worker"]
    command += ["--pool", "threads", "--concurrency", "2"]
    command += ["-Q", ",".join(QUEUES), "-n", name, "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield process, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _purge()


def _wait_for(condition, *, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out; worker log:\n{log.read_text()[-4000:]}")


def _queues_empty() -> bool:
    with app.connection_for_write() as conn:
        return all(conn.default_channel.client.llen(queue) == 0 for queue in QUEUES)


@pytest.mark.postgres
def test_a_scheduled_campaign_is_sent_exactly_once_per_consented_customer_and_channel(worker, settings):
    process, log = worker
    both = [granted(CustomerFactory(phone=f"+1415555{i:04d}"), "email", "sms") for i in range(30)]
    email_only = [granted(CustomerFactory(), "email") for _ in range(20)]
    CustomerFactory()  # no consent
    suppress(email_only[0])
    campaign = sending_campaign()
    expected = {(c.pk, "email") for c in both + email_only[1:]} | {(c.pk, "sms") for c in both}

    # Two dispatchers at once (beat fired twice) and a sweeper: the campaign is still launched once.
    campaigns_dispatch_due_task.delay()
    campaigns_dispatch_due_task.delay()
    deliveries_sweep_task.delay()
    _wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT, log=log)

    sent = set(OutboxMessage.objects.filter(cause_id=campaign.pk).values_list("delivery_id", flat=True))
    rows = Delivery.objects.filter(cause_id=campaign.pk)
    assert {(row.customer_id, row.channel) for row in rows} == expected
    assert {row.status for row in rows} == {Delivery.Status.SENT}
    assert {row.attempts for row in rows} == {1}
    assert sent == {row.pk for row in rows}

    # A chunk task delivered again (broker redelivery) and another sweep send nothing more.
    ids = sorted(row.pk for row in rows)
    delivery_chunk_send_task.delay("campaign", campaign.pk, ids[0], ids[-1])
    deliveries_sweep_task.delay()
    _wait_for(_queues_empty, log=log)
    time.sleep(1)  # let the last fetched task finish
    assert OutboxMessage.objects.filter(cause_id=campaign.pk).count() == len(expected)
    assert process.poll() is None

