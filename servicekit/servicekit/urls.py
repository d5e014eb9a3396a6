"""Every service's routes (ROOT_URLCONF): its API (settings.SERVICE_API), health and an index, under
/api/<service>.

Errors Django answers itself (a route that does not exist, a Host not allowed) are JSON too.
"""

from pathlib import Path

import ninja
from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.utils.module_loading import import_string
from django.views.static import serve

from servicekit import views

NINJA_STATIC = Path(ninja.__file__).parent / "static"

handler400 = "servicekit.errors.bad_request"
handler403 = "servicekit.errors.permission_denied"
handler404 = "servicekit.errors.not_found"
handler500 = "servicekit.errors.server_error"


def service_urlpatterns(own: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """The service's own routes and the shared ones, under the service's prefix at the gateway. Paths have no
    trailing slash (servicekit.middleware takes one away): /api/<service>/health, /api/<service> itself."""
    shared = [
        path("health", views.health, name="health"),
        # The API docs page's scripts and style (settings.STATIC_URL): a few files, read per page view.
        re_path(r"^static/(?P<path>ninja/[A-Za-z0-9_.-]+)$", serve, {"document_root": NINJA_STATIC}),
    ]
    prefix = f"api/{settings.SERVICE_NAME}"
    return [path(prefix, views.index, name="index"), path(f"{prefix}/", include(shared + own))]


urlpatterns = service_urlpatterns([path("", import_string(settings.SERVICE_API).urls)])
