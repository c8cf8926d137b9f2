"""Enqueue a task by its registered name once the current transaction commits.

Services enqueue through here instead of importing ``customers.tasks``: the tasks import the services,
so the services importing the tasks back would make a circle. ``CustomersConfig.ready`` imports the
task module, so every name is registered in web processes as well as in workers.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction


def task_enqueue_on_commit(name: str, *args) -> None:
    """After commit, ``delay`` the task registered as ``name`` with ``args`` (nothing on rollback)."""
    transaction.on_commit(lambda: current_app.tasks[name].delay(*args))
