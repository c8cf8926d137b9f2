"""``python -m tests.campaigns.delivery.worker_main <celery args>``: a Celery worker for crash tests.

The same worker as the Procfile's, with three things a test sets through the environment:
``TANDEM_TEST_SETTINGS`` (JSON) overrides settings such as the chunk size and the lease;
``TANDEM_TEST_PROVIDER_LOG`` replaces the email and SMS providers by one that appends every batch it
accepts to that file (one line per call, ``pid:id,id,…``), shared by every worker process, so a test
counts what a provider really received; ``TANDEM_TEST_SEND_SECONDS`` makes each chunk that long
between its claim and its outcome (half before and half after the provider accepts), so a kill, a
flush or a dropped connection lands mid-chunk.
"""

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _die_with_the_test_run() -> None:
    """A test run stopped from outside must not leave this worker taking the next run's tasks."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_die_with_the_test_run()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from campaigns.channels.base import SendResult  # noqa: E402
from campaigns.channels.registry import channel_register  # noqa: E402
from campaigns.delivery import sending  # noqa: E402

for name, value in json.loads(os.environ.get("TANDEM_TEST_SETTINGS", "{}")).items():
    setattr(settings, name, value)
PROVIDER_LOG = os.environ.get("TANDEM_TEST_PROVIDER_LOG", "")
HALF = float(os.environ.get("TANDEM_TEST_SEND_SECONDS", "0")) / 2


class RecordingProvider:
    """A provider that accepts everything and writes down each call, with no uniqueness of its own."""

    def __init__(self, channel: str):
        self.channel = channel

    def build_payload(self, *, rendered, to, metadata, links):
        return {"delivery_id": metadata["delivery_id"], "to": str(to)}

    def send_many(self, payloads: list) -> list:
        time.sleep(HALF)
        line = f"{os.getpid()}:{','.join(str(payload['delivery_id']) for payload in payloads)}\n"
        descriptor = os.open(PROVIDER_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line.encode())  # one O_APPEND write per call: lines never interleave
        finally:
            os.close(descriptor)
        time.sleep(HALF)
        return [SendResult(provider_id=f"recorded:{payload['delivery_id']}") for payload in payloads]


if PROVIDER_LOG:
    settings.DELIVERY_OUTBOX_CHANNELS = []
    for channel in ("email", "sms"):
        channel_register(channel, lambda channel=channel: RecordingProvider(channel))
elif HALF:
    record = sending.deliveries_record

    def slow_record(**kwargs):
        time.sleep(2 * HALF)  # the outbox is written with the outcomes: the whole delay comes before
        return record(**kwargs)

    sending.deliveries_record = slow_record

if __name__ == "__main__":
    from celery.bin.celery import main

    sys.argv[0] = "celery"
    sys.exit(main())
