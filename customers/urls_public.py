from django.urls import path

from customers.views import public

app_name = "public"

urlpatterns = [
    path("confirm/<str:token>/", public.consent_confirm_view, name="consent-confirm"),
]
