"""Operate one campaign from a terminal: launch, watch, inspect, why."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from campaigns.delivery.launch import campaign_launch
from campaigns.delivery.progress import campaign_progress, campaign_why, customers_matching, progress_bar
from campaigns.exceptions import CampaignError
from campaigns.models import Campaign, Delivery

LIVE = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING, Campaign.Status.PAUSED)


class Command(BaseCommand):
    help = (
        "Operate a campaign: `launch <id>` starts sending now; `watch <id>` shows a progress bar until it is done; "
        "`inspect <id>` prints counts by status and reason and a sample of failures; "
        "`why <id> <email|phone|name>` explains what happened to one person."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["launch", "watch", "inspect", "why"])
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("who", nargs="?", default="", help="For `why`: the person's email, phone or name.")
        parser.add_argument("--interval", type=float, default=2.0, help="For `watch`: seconds between refreshes.")
        parser.add_argument("--timeout", type=float, default=0, help="For `watch`: give up after this many seconds.")

    def handle(self, *args, action: str, campaign_id: int, who: str, interval: float, timeout: float, **options):
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise CommandError(f"No campaign with id {campaign_id}.")
        getattr(self, f"_{action}")(campaign, who=who, interval=max(interval, 0.0), timeout=timeout)

    def _launch(self, campaign: Campaign, **_) -> None:
        try:
            result = campaign_launch(campaign=campaign)
        except CampaignError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{campaign.name}: {result.created} deliveries written, {len(result.ranges)} chunks queued; "
            f"now {campaign.get_status_display().lower()}."
        )

    def _watch(self, campaign: Campaign, *, interval: float, timeout: float, **_) -> None:
        started = time.monotonic()
        while True:
            campaign.refresh_from_db(fields=["status"])
            progress = campaign_progress(campaign=campaign)
            self.stdout.write(
                f"\r{progress_bar(progress)}  {progress.sent_last_minute}/min  "
                f"{campaign.get_status_display().lower():<10}",
                ending="",
            )
            self.stdout.flush()
            if campaign.status not in LIVE:
                break
            if timeout and time.monotonic() - started >= timeout:
                self.stdout.write("")
                raise CommandError(f"Still {campaign.get_status_display().lower()} after {timeout:g} seconds.")
            time.sleep(interval)
        self.stdout.write("")
        self._inspect(campaign)

    def _inspect(self, campaign: Campaign, **_) -> None:
        progress = campaign_progress(campaign=campaign)
        write = self.stdout.write
        write(f"Campaign {campaign.pk} “{campaign.name}”: {campaign.get_status_display().lower()}")
        write(progress_bar(progress))
        for status, count in progress.statuses.items():
            if count:
                write(f"  {Delivery.Status(status).label.split(' (')[0].lower():<10} {count}")
        for label, rows in (("skipped", progress.skipped_by_reason), ("failed", progress.failed_by_reason)):
            for _reason, reason_label, count in rows:
                write(f"  {label}: {reason_label}: {count}")
        write(f"  sent in the last minute: {progress.sent_last_minute}")
        failures = Delivery.objects.filter(
            cause_type=Delivery.Cause.CAMPAIGN,
            cause_id=campaign.pk,
            status__in=[Delivery.Status.FAILED, Delivery.Status.UNKNOWN],
        ).order_by("-updated_at", "-id")[:10]
        failures = list(failures)
        if failures:
            write("Sample of failures:")
            for row in failures:
                write(
                    f"  delivery {row.pk} {row.channel} to {row.address or '(no address)'}: {row.status}"
                    f" ({row.get_reason_display() or 'no reason'}) {row.error}".rstrip()
                )

    def _why(self, campaign: Campaign, *, who: str, **_) -> None:
        if not who.strip():
            raise CommandError("Give the person's email, phone or name: campaign why <id> <email|phone|name>.")
        customers = customers_matching(query=who)
        if not customers:
            raise CommandError(f"No customer has the email, phone or name {who!r}.")
        for customer in customers:
            answer = campaign_why(campaign=campaign, customer=customer)
            name = f"{customer.first_name} {customer.last_name}".strip() or "(no name)"
            self.stdout.write(f"{name} <{customer.email or customer.phone or 'no address'}>:")
            for row in answer.deliveries:
                sent = f", sent {row.sent_at:%Y-%m-%d %H:%M:%S %Z}" if row.sent_at else ""
                self.stdout.write(
                    f"  {row.channel}: {row.status_label.split(' (')[0].lower()} — {row.explanation} "
                    f"(to {row.address or 'no address'}, {row.attempts} attempts{sent})"
                )
            for reason in answer.not_in_audience:
                self.stdout.write(f"  {reason}")
