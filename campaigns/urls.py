from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe_view, name="unsubscribe"),
    path("push/subscribe/<str:token>/", views.push_subscribe_view, name="push-subscribe"),
    path("push/worker.js", views.push_worker_view, name="push-worker"),
]
