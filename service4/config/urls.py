"""Routes of service4, served under /api/service4/ at the gateway."""

from django.urls import path

from notifications.api import api
from servicekit.urls import handler400, handler403, handler404, handler500, service_urlpatterns  # noqa: F401

urlpatterns = service_urlpatterns([path("", api.urls)])
