from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe_view, name="unsubscribe"),
]
