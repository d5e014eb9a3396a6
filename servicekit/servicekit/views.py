"""Views every service serves: what it is, and its health."""

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET

from servicekit import server
from servicekit.jsonio import dumps, json_response


@cache
def index_body() -> bytes:
    """What the index answers never changes while the process runs: encoded once."""
    prefix = f"/api/{settings.SERVICE_NAME}"
    api = import_string(settings.SERVICE_API)
    links = {"health": f"{prefix}/health", "docs": f"{prefix}/docs", "openapi": f"{prefix}/openapi.json"}
    return dumps({"service": settings.SERVICE_NAME, "title": api.title, "version": api.version, "links": links})


@cache
def health_details() -> list[Callable[[], dict]]:
    """settings.HEALTH_DETAILS, imported once."""
    return [import_string(details) for details in settings.HEALTH_DETAILS]


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """/api/<service>: the service's name and version, and where its health and API documents are."""
    return HttpResponse(index_body(), content_type="application/json")


@require_GET
def health(request: HttpRequest) -> HttpResponse:
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
        "name": settings.REPLICA_NAME,
        "node": settings.NODE_NAME,
        "checks": {"database": database},
        "server": server.worker_facts(),
    }
    if healthy:
        # What a service adds of its own (settings.HEALTH_DETAILS: dotted paths of functions returning a dict).
        for details in health_details():
            body.update(details())
    return json_response(body, status=200 if healthy else 503)
