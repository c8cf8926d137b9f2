from __future__ import annotations

from django.db import models


class CustomerPushDevice(models.Model):
    """Links a customer to a django-push-notifications device (FCM); an inactive device is no address."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="push_devices")
    device = models.OneToOneField("push_notifications.GCMDevice", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Device {self.device_id} of customer {self.customer_id}"
