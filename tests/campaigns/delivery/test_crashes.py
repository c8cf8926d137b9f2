"""Exactly once through real Celery worker processes on real PostgreSQL and a real broker, under faults.

Each test starts worker processes (``worker_main``: the Procfile's worker with small chunks and a slow
provider), breaks something mid-campaign (SIGKILL of the worker's process group, FLUSHDB of the broker,
the database dropping every connection, a chunk task published twice, two workers at once), then lets
the sweeper (the test calls it, as beat would) finish the campaign. The provider writes down every call
it receives, so "sent twice" is counted where it would happen, not inferred from our own rows.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from kombu import Connection

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sweeper import deliveries_sweep
from campaigns.models import Campaign, Delivery, OutboxMessage
from campaigns.tasks import delivery_chunk_send_task
from config.celery import app
from customers.models import ConsentState, Customer
from customers.normalization import address_hmac
from tests.campaigns.delivery.conftest import ROOT, process_database_url, sending_campaign
from tests.factories import CustomerFactory

QUEUES = ("celery", "dispatch", "sending")
AMQP_URL = os.environ.get("TANDEM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
Status = Delivery.Status


def _needs(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"needs {what}")
    pytest.skip(f"needs {what}")


def _purge(broker_url: str) -> None:
    with Connection(broker_url) as conn:
        channel = conn.default_channel
        for queue in QUEUES:
            channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            channel.queue_purge(queue)
        if broker_url.startswith("redis"):
            channel.client.delete("unacked", "unacked_index")  # what killed workers had fetched


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process, self.log = process, log

    def kill(self) -> None:
        """SIGKILL the worker's whole process group, as the OOM killer or a lost host would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()  # what it still holds are spare copies of finished chunks; a warm shutdown costs seconds


class Fleet:
    """Starts worker processes on the test database; every one is stopped after the test."""

    def __init__(self, tmp_path: Path, broker_url: str, tunables: dict, provider_log: Path | None, seconds: float):
        self.tmp_path, self.broker_url, self.tunables = tmp_path, broker_url, tunables
        self.provider_log, self.seconds = provider_log, seconds
        self.workers: list[Worker] = []
        self.sweep = deliveries_sweep  # what beat would run every minute; a broker-specific one may replace it
        self.sweeps: list = []

    def start(self) -> Worker:
        dropped = ("EMAIL_BACKEND", "TANDEM_OUTBOX_CHANNELS", "CELERY_BROKER_URL", "BROKER_URL")
        env = {key: value for key, value in os.environ.items() if key not in dropped}
        env.update(
            DATABASE_URL=process_database_url(),
            REDIS_URL=django_settings.REDIS_URL,
            CELERY_BROKER_URL=self.broker_url,
            TANDEM_TESTING="1",
            PYTHONUNBUFFERED="1",
            TANDEM_TEST_SETTINGS=json.dumps(self.tunables),
            TANDEM_TEST_SEND_SECONDS=str(self.seconds),
        )
        if self.provider_log:
            env["TANDEM_TEST_PROVIDER_LOG"] = str(self.provider_log)
        log = self.tmp_path / f"worker-{len(self.workers)}.log"
        name = f"crash-test-{uuid.uuid4().hex[:8]}@%h"
        command = [sys.executable, "-m", "tests.campaigns.delivery.worker_main", "-A", "config", "worker"]
        command += ["--pool", "threads", "--concurrency", "2", "-Q", ",".join(QUEUES), "-n", name]
        command += ["--without-mingle", "--without-gossip", "--loglevel", "INFO"]
        with log.open("w") as output:
            process = subprocess.Popen(  # noqa: S603
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(process, log)
        self.workers.append(worker)
        self.wait_for(lambda: " ready." in log.read_text(), sweep=False)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.log.read_text()[-3000:]}" for w in self.workers)

    def wait_for(self, condition, *, sweep: bool, seconds: float = 60) -> None:
        """Poll ``condition``; with ``sweep``, run the sweeper every second meanwhile, as beat would."""
        deadline = time.monotonic() + seconds
        last_sweep = 0.0
        while time.monotonic() < deadline:
            if condition():
                return
            if sweep and time.monotonic() - last_sweep >= 1:
                self.sweeps.append(self.sweep())
                last_sweep = time.monotonic()
            time.sleep(0.1)
        pytest.fail(f"timed out; worker logs:\n{self.logs()}")


def _fleet(request, tmp_path, *, broker_url: str, provider: bool, seconds: float, **tunables) -> Fleet:
    _purge(broker_url)
    fleet = Fleet(tmp_path, broker_url, tunables, tmp_path / "provider.log" if provider else None, seconds)

    def stop() -> None:
        for worker in fleet.workers:
            worker.stop()
        _purge(broker_url)

    request.addfinalizer(stop)
    return fleet


@pytest.fixture
def fleet(request, transactional_db, tmp_path, settings):
    """A factory of worker fleets on Redis; the test process shares the workers' tunables."""
    if not django_settings.REDIS_URL:
        _needs("Redis (set REDIS_URL or run scripts/test)")

    def make(*, provider: bool = True, seconds: float = 0.6, chunk: int = 200, lease: int = 20, redrive: int = 3):
        tunables = {
            "DELIVERY_CHUNK_SIZE": chunk,
            "DELIVERY_LEASE_SECONDS": lease,
            "DELIVERY_REDRIVE_AFTER_SECONDS": redrive,
        }
        for name, value in tunables.items():
            setattr(settings, name, value)
        return _fleet(request, tmp_path, broker_url=django_settings.CELERY_BROKER_URL, provider=provider,
                      seconds=seconds, **tunables)

    return make


def _audience(size: int) -> set[tuple[int, str]]:
    """``size`` customers with email and SMS consent, plus a few nobody may contact; the expected pairs."""
    base = Customer.objects.count()
    customers = [
        CustomerFactory.build(email=f"crash{base + i}@example.com", phone=f"+1415{base + i:07d}")
        for i in range(size + 5)
    ]
    for customer in customers:
        customer.email_hmac = address_hmac("email", customer.email)
        customer.phone_hmac = address_hmac("sms", customer.phone)
    customers = Customer.objects.bulk_create(customers)
    consented, unconsented = customers[:size], customers[size:]
    ConsentState.objects.bulk_create(
        ConsentState(customer=customer, channel=channel, status="granted")
        for customer in consented
        for channel in ("email", "sms")
    )
    ConsentState.objects.bulk_create(
        ConsentState(customer=customer, channel="email", status="withdrawn") for customer in unconsented
    )
    return {(customer.pk, channel) for customer in consented for channel in ("email", "sms")}


def _received(fleet: Fleet) -> tuple[Counter, list[str]]:
    """Per delivery id, how many times the provider received it; and the pid of each provider call."""
    received, callers = Counter(), []
    text = fleet.provider_log.read_text() if fleet.provider_log.exists() else ""
    for line in text.splitlines():
        pid, _, ids = line.partition(":")
        callers.append(pid)
        received.update(int(item) for item in ids.split(","))
    return received, callers


def _statuses(campaign: Campaign) -> Counter:
    return Counter(Delivery.objects.filter(cause_id=campaign.pk).values_list("status", flat=True))


def _campaign_sent(campaign: Campaign):
    return lambda: Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk) == Campaign.Status.SENT


def _assert_each_pair_once(campaign: Campaign, expected: set[tuple[int, str]]) -> list[Delivery]:
    rows = list(Delivery.objects.filter(cause_id=campaign.pk))
    pairs = [(row.customer_id, row.channel) for row in rows]
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == expected
    return rows


@pytest.mark.postgres
@pytest.mark.parametrize("provider", [True, False], ids=["provider", "outbox"])
def test_a_worker_killed_mid_campaign_and_restarted_sends_nothing_twice_and_loses_nothing(fleet, provider):
    fleet = fleet(provider=provider)
    expected = _audience(1500 if provider else 500)  # 3,000 (or 1,000) deliveries, 15 (or 5) chunks
    campaign = sending_campaign()
    first = fleet.start()
    campaign_launch(campaign=campaign)

    # Killed once some, not all, are out and a chunk is between its claim and its outcome.
    def mid_way() -> bool:
        in_flight = Delivery.objects.filter(cause_id=campaign.pk, status=Status.SENDING)
        if provider:  # inside a provider call
            in_flight = in_flight.filter(handed_at__isnull=False)
        return _statuses(campaign)[Status.SENT] >= 400 and in_flight.exists()

    fleet.wait_for(mid_way, sweep=False)
    first.kill()
    sending = Delivery.objects.filter(cause_id=campaign.pk, status=Status.SENDING)
    handed = set(sending.filter(handed_at__isnull=False).values_list("pk", flat=True))
    not_handed = set(sending.filter(handed_at__isnull=True).values_list("pk", flat=True))
    sent_before = _statuses(campaign)[Status.SENT]
    assert 0 < sent_before < len(expected)
    assert handed | not_handed
    assert not (handed and not provider)  # the outbox is written with the outcome: nothing is "handed"

    # The lease runs out (the sweeper is told it is later), then a new worker finishes the campaign.
    swept = deliveries_sweep(now=timezone.now() + timedelta(seconds=21))
    assert (swept.requeued, swept.lease_expired) == (len(not_handed), len(handed))
    fleet.start()
    fleet.wait_for(_campaign_sent(campaign), sweep=True)

    rows = _assert_each_pair_once(campaign, expected)
    by_status = Counter(row.status for row in rows)
    unknown = {row.pk for row in rows if row.status == Status.UNKNOWN}
    assert set(by_status) <= {Status.SENT, Status.UNKNOWN}
    assert unknown == handed  # only what may have reached the provider is left unresolved
    assert all(row.attempts == 2 for row in rows if row.pk in not_handed)
    if provider:
        received, _ = _received(fleet)
        assert max(received.values()) == 1  # nothing twice at the provider
        sent = {row.pk for row in rows if row.status == Status.SENT}
        assert sent <= set(received)  # "sent" only when the provider has it
        assert {row.pk for row in rows} - set(received) <= unknown  # nothing lost without a trace
    else:
        outbox = Counter(OutboxMessage.objects.filter(cause_id=campaign.pk).values_list("delivery_id", flat=True))
        assert set(outbox) == {row.pk for row in rows}
        assert set(outbox.values()) == {1}
    print(f"\nkill -9 ({'provider' if provider else 'outbox'}): {sent_before} sent before, "
          f"{len(handed)} handed and unresolved -> unknown, {len(not_handed)} claimed -> sent again, "
          f"final {dict(by_status)}")


def _chunk_tasks_done(fleet: Fleet) -> int:
    return sum(
        1
        for w in fleet.workers
        for line in w.log.read_text().splitlines()
        if "campaigns.delivery_chunk_send[" in line and " succeeded in " in line
    )


@pytest.mark.postgres
def test_a_flushed_broker_mid_campaign_still_completes_and_sends_nothing_twice(fleet):
    fleet = fleet(chunk=100)
    expected = _audience(500)
    campaign = sending_campaign()
    fleet.start()
    campaign_launch(campaign=campaign)

    fleet.wait_for(lambda: _statuses(campaign)[Status.SENT] >= 200, sweep=False)
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # every queued and every fetched-but-unacknowledged task
    queued_at_flush = _statuses(campaign)[Status.QUEUED]
    assert queued_at_flush > 0

    fleet.wait_for(_campaign_sent(campaign), sweep=True)  # only the sweeper can publish what was lost
    rows = _assert_each_pair_once(campaign, expected)
    received, _ = _received(fleet)
    assert {row.status for row in rows} == {Status.SENT}
    assert {row.attempts for row in rows} == {1}
    assert set(received) == {row.pk for row in rows}
    assert set(received.values()) == {1}
    redriven = sum(sweep.redriven for sweep in fleet.sweeps)
    assert redriven > 0  # (less than queued_at_flush: the worker still ran the chunks it held in memory)
    print(f"\nflush: {queued_at_flush} queued at the flush, {redriven} re-driven by sweeps, {len(rows)} sent once")


@pytest.mark.postgres
def test_the_same_chunk_task_published_three_times_calls_the_provider_once(fleet):
    fleet = fleet(seconds=1.0)
    expected = _audience(100)
    campaign = sending_campaign()
    result = campaign_launch(campaign=campaign)  # publishes the chunk once
    [(first_id, last_id)] = result.ranges
    for _ in range(2):  # and the broker delivers it twice more
        delivery_chunk_send_task.delay("campaign", campaign.pk, first_id, last_id)
    fleet.start()  # two threads: two copies run at the same time

    fleet.wait_for(lambda: _chunk_tasks_done(fleet) >= 3, sweep=False)
    rows = _assert_each_pair_once(campaign, expected)
    received, callers = _received(fleet)
    assert len(callers) == 2  # one provider call per channel of the one chunk
    assert set(received) == {row.pk for row in rows}
    assert set(received.values()) == {1}
    assert {row.status for row in rows} == {Status.SENT}
    assert {row.attempts for row in rows} == {1}
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def _drop_database_connections() -> int:
    """Terminate every other session on the test database, as a database restart would."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_database_connections_dropped_mid_chunk_are_retried_and_nothing_is_sent_twice(fleet):
    fleet = fleet(provider=False, seconds=1.0, chunk=100, lease=4)
    expected = _audience(400)
    campaign = sending_campaign()
    worker = fleet.start()
    campaign_launch(campaign=campaign)

    terminated = 0
    for target in (100, 300, 500):  # three outages while chunks sit between their claim and their outcome
        fleet.wait_for(lambda target=target: _statuses(campaign)[Status.SENT] >= target, sweep=True)
        terminated += _drop_database_connections()
    fleet.wait_for(_campaign_sent(campaign), sweep=True)

    rows = _assert_each_pair_once(campaign, expected)
    outbox = Counter(OutboxMessage.objects.filter(cause_id=campaign.pk).values_list("delivery_id", flat=True))
    assert {row.status for row in rows} == {Status.SENT}
    assert set(outbox) == {row.pk for row in rows}
    assert set(outbox.values()) == {1}
    retried = worker.log.read_text().count("Retry in")
    assert retried > 0  # the outage reached a chunk, which retried with backoff
    assert worker.process.poll() is None
    resent = sum(1 for row in rows if row.attempts > 1)
    print(f"\ndb drop: {terminated} sessions terminated, {retried} task retries, {resent} rows claimed again")


@pytest.mark.postgres
def test_two_worker_processes_on_one_campaign_send_each_message_once(fleet):
    fleet = fleet(chunk=100)
    expected = _audience(500)
    campaign = sending_campaign()
    fleet.start()
    fleet.start()
    result = campaign_launch(campaign=campaign)
    for first_id, last_id in result.ranges:  # every chunk twice: the workers race for the same rows
        delivery_chunk_send_task.delay("campaign", campaign.pk, first_id, last_id)

    fleet.wait_for(_campaign_sent(campaign), sweep=True)
    rows = _assert_each_pair_once(campaign, expected)
    received, callers = _received(fleet)
    assert set(received) == {row.pk for row in rows}
    assert set(received.values()) == {1}
    assert {row.status for row in rows} == {Status.SENT}
    assert {row.attempts for row in rows} == {1}
    assert len(set(callers)) == 2  # both processes sent part of it
    print(f"\nscale-out: provider calls per process {dict(Counter(callers))}")


@pytest.fixture
def rabbitmq():
    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception:
        _needs(f"RabbitMQ at {AMQP_URL} (set TANDEM_TEST_AMQP_URL)")
    client = Celery("tandem-rabbitmq-test", broker=AMQP_URL, set_as_current=False)
    client.conf.task_routes = django_settings.CELERY_TASK_ROUTES
    yield client
    client.close()


@pytest.mark.postgres
def test_on_rabbitmq_a_campaign_survives_a_killed_worker_and_is_sent_once(request, transactional_db, tmp_path,
                                                                           rabbitmq):
    if not django_settings.REDIS_URL:
        _needs("Redis for the cache (set REDIS_URL or run scripts/test)")
    tunables = {"DELIVERY_CHUNK_SIZE": 100, "DELIVERY_LEASE_SECONDS": 4, "DELIVERY_REDRIVE_AFTER_SECONDS": 3}
    fleet = _fleet(request, tmp_path, broker_url=AMQP_URL, provider=True, seconds=0.6, **tunables)
    fleet.sweep = lambda: rabbitmq.send_task("campaigns.deliveries_sweep")  # beat, through RabbitMQ
    expected = _audience(300)
    campaign = sending_campaign()
    first = fleet.start()
    assert "transport:   amqp://guest:**@127.0.0.1:5672//" in first.log.read_text()

    # Beat fired twice: the worker launches the campaign once and publishes its chunks to RabbitMQ.
    rabbitmq.send_task("campaigns.campaigns_dispatch_due")
    rabbitmq.send_task("campaigns.campaigns_dispatch_due")
    handed = Delivery.objects.filter(cause_id=campaign.pk, status=Status.SENDING, handed_at__isnull=False)
    fleet.wait_for(lambda: _statuses(campaign)[Status.SENT] >= 100 and handed.exists(), sweep=False)
    first.kill()  # RabbitMQ gives its unacknowledged chunks back at once; the lease decides the rest
    lost_in_flight = set(handed.values_list("pk", flat=True))

    fleet.start()
    fleet.wait_for(_campaign_sent(campaign), sweep=True)
    rows = _assert_each_pair_once(campaign, expected)
    received, _ = _received(fleet)
    unknown = {row.pk for row in rows if row.status == Status.UNKNOWN}
    assert {row.status for row in rows} <= {Status.SENT, Status.UNKNOWN}
    assert unknown == lost_in_flight
    assert set(received.values()) == {1}
    assert {row.pk for row in rows if row.status == Status.SENT} <= set(received)
    assert {row.pk for row in rows} - set(received) <= unknown
    print(f"\nrabbitmq kill -9: {len(unknown)} unknown, {len(rows) - len(unknown)} sent once")
