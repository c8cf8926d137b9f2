"""Several processes sending the same chunk at once on PostgreSQL: every delivery is claimed once."""

import os
import subprocess
import sys

import pytest

from campaigns.delivery.launch import campaign_launch
from campaigns.models import Campaign, Delivery, OutboxMessage
from tests.campaigns.delivery.conftest import ROOT, granted, process_database_url, sending_campaign
from tests.factories import CustomerFactory

PROCESSES = 6
CHILD = """
import os, sys, time
import django

django.setup()
from django.db import connection

from campaigns.delivery.sending import delivery_chunk_send

connection.ensure_connection()
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.002)
result = delivery_chunk_send(
    cause_type="campaign", cause_id=int(sys.argv[2]), first_id=int(sys.argv[3]), last_id=int(sys.argv[4])
)
print(result.claimed, flush=True)
"""


@pytest.mark.postgres
def test_six_processes_sending_the_same_chunk_claim_each_delivery_once(transactional_db, tmp_path):
    for index in range(150):
        granted(CustomerFactory(phone=f"+1415556{index:04d}"), "email", "sms")
    campaign = sending_campaign()
    ranges = campaign_launch(campaign=campaign).ranges
    go = tmp_path / "go"
    env = {key: value for key, value in os.environ.items() if key not in ("EMAIL_BACKEND", "TANDEM_OUTBOX_CHANNELS")}
    env.update(DATABASE_URL=process_database_url(), TANDEM_TESTING="1", DJANGO_SETTINGS_MODULE="config.settings")
    args = [str(go), str(campaign.pk), str(ranges[0][0]), str(ranges[-1][1])]
    children = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        go.touch()  # all connected: released together
        claimed = [int(child.communicate(timeout=120)[0].strip()) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()

    assert sum(claimed) == 300
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Delivery.Status.SENT, 1)}
    assert OutboxMessage.objects.count() == 300
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT
