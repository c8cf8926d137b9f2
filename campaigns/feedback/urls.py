from django.urls import path

from campaigns.feedback import views

app_name = "feedback"

urlpatterns = [
    path("twilio/inbound/", views.twilio_inbound_view, name="twilio-inbound"),
    path("twilio/status/<int:delivery_id>/", views.twilio_status_view, name="twilio-status"),
]
