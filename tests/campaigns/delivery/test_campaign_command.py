"""`manage.py campaign launch|watch|inspect|why`: a thin terminal over the delivery services and selectors."""

import io

import pytest
from django.core.management import CommandError, call_command

from campaigns.delivery.sending import delivery_chunk_send
from campaigns.models import Campaign, Delivery
from tests.campaigns.delivery.conftest import sending_campaign
from tests.factories.campaigns import CampaignFactory

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command("campaign", *[str(arg) for arg in args], stdout=out)
    return out.getvalue()


@pytest.fixture
def launched(audience, django_capture_on_commit_callbacks):
    campaign = sending_campaign()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        output = _run("launch", campaign.pk)
    assert len(callbacks) == 1  # the chunk tasks are published after commit
    return campaign, output


def _send_all(campaign):
    ids = Delivery.objects.filter(cause_id=campaign.pk).values_list("id", flat=True)
    delivery_chunk_send(cause_type="campaign", cause_id=campaign.pk, first_id=min(ids), last_id=max(ids))


def test_launch_writes_the_deliveries_and_says_so(launched):
    campaign, output = launched

    assert output == f"{campaign.name}: 3 deliveries written, 1 chunks queued; now sending.\n"
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING


def test_launch_refuses_a_draft_and_an_unknown_id():
    draft = CampaignFactory()

    with pytest.raises(CommandError, match="draft campaign cannot become sending"):
        _run("launch", draft.pk)
    with pytest.raises(CommandError, match="No campaign with id"):
        _run("inspect", draft.pk + 1000)
    assert Campaign.objects.get(pk=draft.pk).status == Campaign.Status.DRAFT


def test_inspect_prints_counts_by_status_and_reason_and_a_sample_of_failures(launched):
    campaign, _ = launched
    _send_all(campaign)
    row = Delivery.objects.filter(channel="sms").get()
    Delivery.objects.filter(pk=row.pk).update(status="failed", reason="provider_refused", error="21610 unsubscribed")

    output = _run("inspect", campaign.pk)

    assert f"Campaign {campaign.pk} “{campaign.name}”: sent" in output
    assert "  sent       2\n" in output
    assert "  failed     1\n" in output
    assert "  failed: Refused by the provider: 1\n" in output
    assert f"  delivery {row.pk} sms to {row.address}: failed (Refused by the provider) 21610 unsubscribed" in output
    assert "[##############################] 100% 3/3" in output


def test_watch_refreshes_a_progress_bar_until_the_campaign_is_done(launched, monkeypatch):
    campaign, _ = launched
    sleeps = []

    def sleep(seconds):  # the chunk runs between two refreshes
        sleeps.append(seconds)
        _send_all(campaign)

    monkeypatch.setattr("campaigns.management.commands.campaign.time.sleep", sleep)

    output = _run("watch", campaign.pk, "--interval", "0.5")

    assert sleeps == [0.5]
    assert "[..............................]   0% 0/3" in output
    assert "[##############################] 100% 3/3" in output
    assert output.index("0% 0/3") < output.index("100% 3/3")
    assert "  sent       3\n" in output


def test_watch_gives_up_after_its_timeout_while_still_sending(launched, monkeypatch):
    campaign, _ = launched
    monkeypatch.setattr("campaigns.management.commands.campaign.time.sleep", lambda seconds: None)
    monkeypatch.setattr("campaigns.management.commands.campaign.time.monotonic", iter(range(0, 100, 10)).__next__)

    with pytest.raises(CommandError, match="Still sending after 15 seconds"):
        _run("watch", campaign.pk, "--timeout", "15")


def test_why_tells_what_happened_to_a_person_found_by_email_or_phone(launched, audience):
    campaign, _ = launched
    _send_all(campaign)
    both, none = audience["both"], audience["none"]

    sent = _run("why", campaign.pk, both.email)
    left_out = _run("why", campaign.pk, "415 555 0102")

    assert f"  email: sent — Sent. (to {both.email}, 1 attempts, sent " in sent
    assert f"  sms: sent — Sent. (to {both.phone}, 1 attempts, sent " in sent
    assert "  email: They have not consented to this channel (or withdrew before the send).\n" in left_out
    assert f"<{none.email}>" in left_out
    with pytest.raises(CommandError, match="No customer has"):
        _run("why", campaign.pk, "nobody@example.org")
    with pytest.raises(CommandError, match="Give the person's email"):
        _run("why", campaign.pk)
