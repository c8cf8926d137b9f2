from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse


class ClerkAdminGuardMiddleware:
    """Store staff without marketing rights are sent to their till pages, never into the admin."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        admin_prefix = reverse("admin:index")
        user = getattr(request, "user", None)
        if request.path.startswith(admin_prefix) and user is not None and user.is_authenticated and not user.is_staff:
            return redirect(settings.LOGIN_URL and reverse("till:capture"))
        return self.get_response(request)
