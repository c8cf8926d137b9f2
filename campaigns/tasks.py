from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(name="campaigns.campaigns_dispatch_due", ignore_result=True)
def campaigns_dispatch_due_task() -> None:
    """Launch the scheduled campaigns whose time has come (beat, every minute)."""
    from campaigns.delivery.launch import campaigns_dispatch_due

    campaigns_dispatch_due()


@shared_task(
    name="campaigns.delivery_chunk_send",
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def delivery_chunk_send_task(cause_type: str, cause_id: int, first_id: int, last_id: int) -> None:
    """Send one chunk of deliveries; a second delivery of this task claims and sends nothing."""
    from django.db import reset_queries

    from campaigns.delivery.sending import delivery_chunk_send

    reset_queries()  # with DEBUG on (the demo), the worker would keep every chunk's SQL, outbox HTML included
    delivery_chunk_send(cause_type=cause_type, cause_id=cause_id, first_id=first_id, last_id=last_id)


@shared_task(name="campaigns.deliveries_sweep", ignore_result=True)
def deliveries_sweep_task() -> None:
    """Re-drive lost chunks, resolve expired leases, finish campaigns (beat, every minute)."""
    from campaigns.delivery.sweeper import deliveries_sweep

    deliveries_sweep()


@shared_task(name="campaigns.frequency_counters_prune", ignore_result=True)
def frequency_counters_prune_task() -> None:
    """Delete frequency-cap counters too old to count in any window (beat, daily)."""
    from django.utils import timezone

    from campaigns.delivery.caps import caps_counters_prune

    caps_counters_prune(now=timezone.now())


@shared_task(name="campaigns.journeys_tick", ignore_result=True)
def journeys_tick_task() -> None:
    """Enrol from journey triggers and step every due enrolment, set-based (beat, every minute)."""
    from campaigns.journeys.tick import journeys_tick

    journeys_tick()


@shared_task(name="campaigns.sms_costs_settle", ignore_result=True)
def sms_costs_settle_task() -> None:
    """Record Twilio's final price of the texts first priced from the table (beat, every 10 minutes)."""
    from campaigns.costs.settle import sms_costs_settle

    sms_costs_settle()


@shared_task(name="campaigns.results_rollups_refresh", ignore_result=True)
def results_rollups_refresh_task() -> None:
    """Re-aggregate the dashboard's daily roll-ups for the days and campaigns touched since the last run
    (beat, every five minutes); a run that finds another one going does nothing."""
    from campaigns.results.rollups import results_rollups_refresh

    results_rollups_refresh()
