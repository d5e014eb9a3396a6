"""Every service's routes (ROOT_URLCONF): its API (settings.SERVICE_API), health and an index, under
/api/<service>.

Errors Django answers itself (a route that does not exist, a Host not allowed) are JSON too.
"""

import re
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
    prefix = f"api/{settings.SERVICE_NAME}"
    # The shared routes at the top level, not in an include: each level of nesting is one more resolver match
    # on every request, health's included.
    return [
        path(prefix, views.index, name="index"),
        path(f"{prefix}/health", views.health, name="health"),
        # The API docs page's scripts and style (settings.STATIC_URL): a few files, read per page view.
        re_path(
            rf"^{re.escape(prefix)}/static/(?P<path>ninja/[A-Za-z0-9_.-]+)$", serve, {"document_root": NINJA_STATIC}
        ),
        path(f"{prefix}/", include(own)),
    ]


urlpatterns = service_urlpatterns([path("", import_string(settings.SERVICE_API).urls)])
