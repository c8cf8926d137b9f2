from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from campaigns.segments import sqlite_functions_register

        connection_created.connect(sqlite_functions_register, dispatch_uid="campaigns.sqlite_functions")
        # Loyalty's bonus windows can be limited to a segment; segments live here, above loyalty.
        from campaigns.selectors import customer_in_segment_named
        from loyalty.hooks import segment_resolver_register

        segment_resolver_register(customer_in_segment_named)

        from campaigns.costs import admin as costs_admin  # noqa: F401
        from campaigns.delivery import admin as delivery_admin  # noqa: F401 (registers its admin pages)
        from campaigns.delivery.progress import delivery_timeline_entries
        from campaigns.feedback import admin as feedback_admin  # noqa: F401
        from campaigns.journeys import admin as journeys_admin  # noqa: F401
        from campaigns.results import admin as results_admin  # noqa: F401
        from campaigns.results import survey_admin  # noqa: F401
        from customers.timeline_sources import timeline_source_register

        timeline_source_register("campaigns.deliveries", delivery_timeline_entries)
        from campaigns.journeys.selectors_admin import journey_timeline_entries

        timeline_source_register("campaigns.journeys", journey_timeline_entries)

        from campaigns.customer_record import (
            EXPORTED_MODELS,
            campaigns_export_sections,
            deliveries_header_panel,
            journeys_header_panel,
        )
        from customers.export_sources import export_source_register
        from customers.header_sources import header_source_register

        header_source_register("campaigns.deliveries", deliveries_header_panel, order=30)
        header_source_register("journeys", journeys_header_panel, order=20)
        export_source_register("campaigns", campaigns_export_sections, models=EXPORTED_MODELS)

        # ESP tracking events (bounces, complaints, opens) arrive through anymail's webhook views.
        from anymail.signals import tracking

        from campaigns.feedback.email import email_tracking_received

        tracking.connect(email_tracking_received, dispatch_uid="campaigns.email_tracking")

        from campaigns.feedback.sms import sms_replies_erase
        from customers.erase_hooks import profile_erase_hook_register

        profile_erase_hook_register("campaigns.sms_replies", sms_replies_erase)
