from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_roles(sender, **kwargs) -> None:
    from customers.roles import roles_ensure

    roles_ensure()


class CustomersConfig(AppConfig):
    name = "customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Re-applied after each app migrates, so the last run sees every app's permissions.
        post_migrate.connect(_ensure_roles, dispatch_uid="customers.ensure_roles")
        # Registers the tasks that services enqueue by name (customers.queue).
        import customers.tasks  # noqa: F401
