"""Several processes sending the same chunk at once on PostgreSQL: every delivery is claimed once."""

import multiprocessing

import pytest
from django.db import connections

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Campaign, Delivery, OutboxMessage
from tests.campaigns.delivery.conftest import granted, sending_campaign
from tests.factories import CustomerFactory

PROCESSES = 6


def _send_in_child(barrier, results, cause_id, first_id, last_id):
    barrier.wait()
    try:
        result = delivery_chunk_send(cause_type="campaign", cause_id=cause_id, first_id=first_id, last_id=last_id)
        results.put(result.claimed)
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(repr(exc))
    finally:
        connections.close_all()


@pytest.mark.postgres
def test_six_processes_sending_the_same_chunk_claim_each_delivery_once(transactional_db):
    for index in range(150):
        granted(CustomerFactory(phone=f"+1415556{index:04d}"), "email", "sms")
    campaign = sending_campaign()
    ranges = campaign_launch(campaign=campaign).ranges
    first_id, last_id = ranges[0][0], ranges[-1][1]
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    connections.close_all()  # children must open their own connections, not share this one

    children = [
        context.Process(target=_send_in_child, args=(barrier, results, campaign.pk, first_id, last_id))
        for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    claimed = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=60)

    assert all(isinstance(count, int) for count in claimed), claimed
    assert sum(claimed) == 300
    assert set(Delivery.objects.values_list("status", "attempts")) == {(Delivery.Status.SENT, 1)}
    assert OutboxMessage.objects.count() == 300
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT
