from __future__ import annotations

from django.db import models


class CustomerPushDevice(models.Model):
    """Links a customer to a django-push-notifications device (FCM); an inactive device is no address."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="push_devices")
    device = models.OneToOneField("push_notifications.GCMDevice", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Device {self.device_id} of customer {self.customer_id}"


class CustomerWebPushDevice(models.Model):
    """Links a customer to a browser's web push subscription (VAPID), made from the preference centre."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="web_push_devices")
    device = models.OneToOneField("push_notifications.WebPushDevice", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Web push device {self.device_id} of customer {self.customer_id}"
