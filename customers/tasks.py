from celery import shared_task

from customers.services.confirmation import consent_confirmation_send, consent_confirmations_redrive
from customers.services.importing import (
    customer_import_run,
    customer_imports_forget_unconfirmed,
    customer_imports_redrive,
)


@shared_task(name="customers.consent_confirmation_send", ignore_result=True)
def consent_confirmation_send_task(confirmation_id: int) -> None:
    """Send one double opt-in mail; a repeated delivery of this task sends nothing more."""
    consent_confirmation_send(confirmation_id=confirmation_id)


@shared_task(name="customers.consent_confirmations_sweep", ignore_result=True)
def consent_confirmations_sweep_task() -> None:
    """Re-drive confirmation mails whose task was lost (the database, not the broker, is the truth)."""
    for confirmation_id in consent_confirmations_redrive():
        consent_confirmation_send_task.delay(confirmation_id)


@shared_task(name="customers.customer_import_run", ignore_result=True)
def customer_import_run_task(import_id: int) -> None:
    """Run (one time slice of) a queued import; a second delivery claims nothing."""
    customer_import_run(import_id=import_id)


@shared_task(name="customers.customer_imports_sweep", ignore_result=True)
def customer_imports_sweep_task() -> None:
    """Re-drive imports whose run task was lost or whose worker died; forget stale unconfirmed files."""
    customer_imports_forget_unconfirmed()
    for import_id in customer_imports_redrive():
        customer_import_run_task.delay(import_id)
