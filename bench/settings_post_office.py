"""Settings for B5 only: Tandem's own, plus django-post_office (installed with the ``bench`` extra)."""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]
POST_OFFICE = {
    # The same ESP backend as Tandem's run (b5_post_office sets the one --esp names); post_office's own
    # defaults otherwise (it logs every send).
    "BACKENDS": {"default": "anymail.backends.postmark.EmailBackend"},
}
