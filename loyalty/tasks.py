from celery import shared_task

from loyalty.services import points_expire_due, tiers_review_due

BATCH = 1000


@shared_task(name="loyalty.points_expire_due", ignore_result=True)
def points_expire_due_task() -> None:
    """Expire due points, FIFO, in batches until no account has newly expired credits."""
    checked = BATCH
    while checked:
        checked, _points = points_expire_due(limit=BATCH)


@shared_task(name="loyalty.tiers_review", ignore_result=True)
def tiers_review_task() -> None:
    """Start grace periods and downgrade accounts whose grace period is over, all accounts in batches."""
    last = -1
    after = 0
    while last != after:
        last, (after, _downgrades) = after, tiers_review_due(after_id=after, limit=BATCH)
