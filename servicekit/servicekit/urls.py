"""Every service's routes (ROOT_URLCONF): its API (settings.SERVICE_API) and health/, under /api/<service>/.

Errors Django answers itself (a route that does not exist, a Host not allowed) are JSON too.
"""

from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path
from django.utils.module_loading import import_string

from servicekit import views

handler400 = "servicekit.errors.bad_request"
handler403 = "servicekit.errors.permission_denied"
handler404 = "servicekit.errors.not_found"
handler500 = "servicekit.errors.server_error"


def service_urlpatterns(own: list[URLPattern | URLResolver]) -> list[URLResolver]:
    """The service's own routes and the shared ones, under the service's prefix at the gateway."""
    shared = [path("health/", views.health, name="health")]
    return [path(f"api/{settings.SERVICE_NAME}/", include(shared + own))]


urlpatterns = service_urlpatterns([path("", import_string(settings.SERVICE_API).urls)])
