"""Admin for marketing staff; every write goes through customers.services."""

from customers.admin import api_keys, consent, customer, imports, merge, stores  # noqa: F401 (registers the admins)
