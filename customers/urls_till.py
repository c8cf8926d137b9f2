from django.contrib.auth import views as auth_views
from django.urls import path

from customers.views import till

app_name = "till"

urlpatterns = [
    path("login/", till.TillLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="till:login"), name="logout"),
    path("store/", till.choose_store, name="choose-store"),
    path("", till.capture, name="capture"),
    path("done/", till.capture_done, name="capture-done"),
    path("lookup/", till.lookup, name="lookup"),
]
