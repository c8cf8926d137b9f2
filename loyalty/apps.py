from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers.capture_hooks import capture_extension_register
        from customers.erase_hooks import profile_erase_hook_register
        from customers.merge_hooks import profile_merge_hook_register
        from customers.timeline_sources import timeline_source_register
        from loyalty.capture import capture_extension
        from loyalty.selectors import timeline_entries_for
        from loyalty.services.lifecycle import accounts_erase, accounts_merge

        capture_extension_register(capture_extension)
        timeline_source_register("loyalty", timeline_entries_for)
        profile_merge_hook_register("loyalty.accounts", accounts_merge)
        profile_erase_hook_register("loyalty.accounts", accounts_erase)
