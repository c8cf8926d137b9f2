from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers.capture_hooks import capture_extension_register
        from customers.timeline_sources import timeline_source_register
        from loyalty.capture import capture_extension
        from loyalty.selectors import timeline_entries_for

        capture_extension_register(capture_extension)
        timeline_source_register("loyalty", timeline_entries_for)
