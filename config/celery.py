import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tandem")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _delivery_preload(**kwargs):
    """Load the send pipeline in the main process, before the pool forks (campaigns/delivery/preload.py)."""
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from campaigns.delivery.preload import delivery_preload

    delivery_preload()
