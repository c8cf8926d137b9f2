"""A worker loads the send pipeline once, before its pool forks, and a failure there never stops it."""

import sys

from celery.signals import worker_init

from campaigns.delivery import preload


def test_the_worker_preloads_the_pipeline_before_forking():
    import config.celery

    assert config.celery._delivery_preload in [ref() for _key, ref in worker_init.receivers]


def test_preloading_imports_the_mail_backend_and_the_channels(settings):
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    sys.modules.pop("anymail.backends.mailgun", None)

    assert preload.delivery_preload() == []

    assert "anymail.backends.mailgun" in sys.modules
    assert "campaigns.channels.email" in sys.modules
    assert "campaigns.delivery.sending" in sys.modules


def test_what_cannot_be_preloaded_is_reported_and_the_rest_still_loads(settings, caplog):
    settings.EMAIL_BACKEND = "no.such.Backend"

    failed = preload.delivery_preload()

    assert "the mail backend" in failed
    assert not {"the send pipeline", "the rate limit's store", "phone metadata"} & set(failed)
    assert "could not preload the mail backend" in caplog.text
