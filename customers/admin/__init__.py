"""Admin for marketing staff; every write goes through customers.services."""

from customers.admin import (  # noqa: F401 (registers the admins)
    api_keys,
    consent,
    customer,
    imports,
    merge,
    purchase_imports,
    stores,
)
