from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers.capture_hooks import capture_extension_register
        from customers.erase_hooks import profile_erase_hook_register
        from customers.export_sources import export_source_register
        from customers.header_sources import header_source_register, purchase_refunds_register
        from customers.merge_hooks import profile_merge_hook_register
        from customers.timeline_sources import timeline_source_register
        from loyalty.capture import capture_extension
        from loyalty.customer_record import (
            EXPORTED_MODELS,
            loyalty_export_sections,
            loyalty_header_panel,
            refunded_purchases,
        )
        from loyalty.selectors import timeline_entries_for
        from loyalty.services.lifecycle import accounts_erase, accounts_merge

        capture_extension_register(capture_extension)
        timeline_source_register("loyalty", timeline_entries_for)
        profile_merge_hook_register("loyalty.accounts", accounts_merge)
        profile_erase_hook_register("loyalty.accounts", accounts_erase)
        header_source_register("loyalty", loyalty_header_panel, order=10)
        purchase_refunds_register("loyalty", refunded_purchases)
        export_source_register("loyalty", loyalty_export_sections, models=EXPORTED_MODELS)
