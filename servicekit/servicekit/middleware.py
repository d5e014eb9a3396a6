"""Request context for every service: request id, deadline, X-Served-By, one JSON access-log line, JSON for every
error."""

import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from servicekit.context import deadline_from, deadline_var, request_id_var
from servicekit.errors import error_response
from servicekit.healthcheck import HEALTHCHECK_VARIABLE, HEALTHCHECKS_METRIC
from servicekit.jsonio import MEDIA_TYPE
from servicekit.logs import log_access
from servicekit.server import uwsgi

# The gateway checks the same pattern; a service checks again because it may be reached another way.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_for(request: HttpRequest) -> str:
    # From META itself: request.headers would build a map of every header to read this one.
    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    if REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith(MEDIA_TYPE)


def count_healthcheck() -> None:
    """uWSGI counts every request its workers serve; the status page subtracts these, which the gateway never saw."""
    if uwsgi is not None:
        uwsgi.metric_inc(HEALTHCHECKS_METRIC)


def has_body(response: HttpResponse) -> bool:
    """A 204 or 304 has none, not even a newline (nginx would log the bytes past its Content-Length as an error)."""
    return not response.streaming and response.status_code not in (204, 304) and bool(response.content)


def as_json_error(response: HttpResponse) -> HttpResponse:
    """Django's own refusals (405 from require_GET, say) are HTML or empty: give them the error shape."""
    replacement = error_response(response.status_code)
    for header, value in response.items():
        if header.lower() not in ("content-type", "content-length"):
            replacement[header] = value
    return replacement


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.served_by = f"{settings.SERVICE_NAME}/{settings.INSTANCE_NAME}"
        # The Hosts allowed as they are, looked up at once; any other (a pattern, a port) goes to Django's check.
        self.exact_hosts = frozenset(
            host for host in settings.ALLOWED_HOSTS if not host.startswith(".") and host != "*"
        )
        self.access_log = settings.ACCESS_LOG

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        # One rule for paths: no trailing slash; the slashed form is the same route (answered, not redirected,
        # so a POST keeps its body).
        if len(request.path_info) > 1 and request.path_info.endswith("/"):
            request.path_info = request.path_info.rstrip("/") or "/"
            request.path = request.path.rstrip("/") or "/"
        request_id = request_id_for(request)
        token = request_id_var.set(request_id)
        deadline = deadline_var.set(deadline_from(request.META, time.monotonic()))
        try:
            response = self.refuse_unknown_host(request) or self.get_response(request)
            json_body = is_json(response)
            if response.status_code >= 400 and not json_body:
                response = as_json_error(response)
            # A JSON body ends its line, as the gateway's own do: a shell prompt after curl starts on a new line.
            # servicekit.jsonio encodes the newline with every body of ours; this adds it to others' (ninja's
            # OpenAPI document), which copies them.
            elif json_body and has_body(response) and not response.content.endswith(b"\n"):
                response.content += b"\n"
            response["X-Request-ID"] = request_id
            response["X-Served-By"] = self.served_by
            if HEALTHCHECK_VARIABLE in request.META:
                count_healthcheck()
            elif self.access_log:
                log_access(request.method or "", request.path, response.status_code, duration_ms(started))
            return response
        finally:
            request_id_var.reset(token)
            deadline_var.reset(deadline)

    def refuse_unknown_host(self, request: HttpRequest) -> HttpResponse | None:
        if not settings.USE_X_FORWARDED_HOST and request.META.get("HTTP_HOST") in self.exact_hosts:
            return None
        try:
            request.get_host()
        except DisallowedHost:
            return error_response(400, "This Host is not served here", code="invalid_host")
        return None


def duration_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
