"""Campaign edits race the start of sending on PostgreSQL: separate processes, released together."""

import pytest
from django.db import connection

from campaigns.exceptions import CampaignError
from campaigns.models import AuditEvent, Campaign
from campaigns.services.campaigns import campaign_save, campaign_transition
from tests.concurrency import errors, race
from tests.factories.campaigns import CampaignFactory, EmailVariantFactory, SegmentFactory


@pytest.mark.postgres
def test_no_edit_lands_after_the_campaign_started_sending(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    campaign = CampaignFactory(channels="email", include=[SegmentFactory()])
    EmailVariantFactory(message=campaign.message)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)

    def edit(i):
        def attempt():
            copy = Campaign.objects.get(pk=campaign.pk)  # read before the lock, like the admin form
            copy.name = f"Edit {i}"
            try:
                campaign_save(campaign=copy, actor=None)
            except CampaignError:
                return "refused"
            return "saved"

        return attempt

    def start():
        campaign_transition(campaign=Campaign.objects.get(pk=campaign.pk), to=Campaign.Status.SENDING, actor=None)
        return "started"

    outcomes = race(*(edit(i) for i in range(12)), start)
    assert all(o.ok for o in outcomes), errors(outcomes)
    results = [o.value for o in outcomes]
    assert results.count("started") == 1
    trail = list(AuditEvent.objects.filter(campaign=campaign).order_by("id").values_list("action", flat=True))
    started_at = trail.index("status_changed")
    assert "changed" not in trail[started_at:]
    assert trail.count("changed") == results.count("saved")
    stored = Campaign.objects.get(pk=campaign.pk)
    assert stored.status == Campaign.Status.SENDING
