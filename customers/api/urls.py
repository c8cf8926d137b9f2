from django.urls import path

from customers.api import views

app_name = "api"

urlpatterns = [
    path("purchases/", views.purchase_create, name="purchase_create"),
    path("purchases/batch/", views.purchase_batch_create, name="purchase_batch_create"),
]
