from django.urls import path

from customers.views import public

app_name = "public"

urlpatterns = [
    path("p/<str:token>/", public.preferences_view, name="preferences"),
    path("s/<str:token>/", public.survey_view, name="survey"),
    path("confirm/<str:token>/", public.consent_confirm_view, name="consent-confirm"),
]
