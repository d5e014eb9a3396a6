"""Views every service serves: what it is, and its health."""

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET

from servicekit import server


@require_GET
def index(request: HttpRequest) -> JsonResponse:
    """/api/<service>: the service's name and version, and where its health and API documents are."""
    prefix = f"/api/{settings.SERVICE_NAME}"
    api = import_string(settings.SERVICE_API)
    links = {"health": f"{prefix}/health", "docs": f"{prefix}/docs", "openapi": f"{prefix}/openapi.json"}
    return JsonResponse({"service": settings.SERVICE_NAME, "title": api.title, "version": api.version, "links": links})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """200 when the service can serve, 503 when its database cannot be reached."""
    try:
        connection.ensure_connection()
        database = "ok"
    except DatabaseError:
        database = "unavailable"
    healthy = database == "ok"
    body = {
        "service": settings.SERVICE_NAME,
        "status": "ok" if healthy else "unavailable",
        "instance": settings.INSTANCE_NAME,
        "checks": {"database": database},
        "server": server.worker_facts(),
    }
    if healthy:
        # What a service adds of its own (settings.HEALTH_DETAILS: dotted paths of functions returning a dict).
        for details in settings.HEALTH_DETAILS:
            body.update(import_string(details)())
    return JsonResponse(body, status=200 if healthy else 503)
