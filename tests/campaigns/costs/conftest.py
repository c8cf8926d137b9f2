from tests.campaigns.delivery.conftest import _send_policies, audience  # noqa: F401 (shared fixtures)
