from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Tandem marketing"
admin.site.site_title = "Tandem"
admin.site.index_title = "Customers, consent, loyalty and campaigns"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="till:login", permanent=False)),
    path("admin/", admin.site.urls),
    path("till/loyalty/", include("loyalty.urls")),
    path("till/", include("customers.urls_till")),
    path("c/", include("customers.urls_public")),
    path("m/", include("campaigns.urls")),
    path("api/v1/", include("customers.api.urls")),
    path("webhooks/", include("campaigns.feedback.urls")),
    path("anymail/", include("campaigns.feedback.urls_anymail")),
]
