"""The one error shape of the stack, {"error": {"code", "message", "details"}}, and Django's error handlers in it."""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse

from servicekit.context import request_id_var
from servicekit.jsonio import json_response


def error_response(status: int, message: str = "", *, code: str = "", details: Any = None) -> HttpResponse:
    """A JSON error response; code and message default to the status's own name and phrase."""
    phrase = HTTPStatus(status).phrase
    body = {
        "error": {
            "code": code or phrase.lower().replace(" ", "_").replace("-", "_"),
            "message": message or phrase,
            "details": details,
        }
    }
    return json_response(body, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(404, f"No route for {request.path}")


def server_error(request: HttpRequest) -> HttpResponse:
    """An unexpected exception: the request id to look the traceback up in the logs by, never the traceback."""
    return error_response(500, "Internal error", code="internal_error", details={"request_id": request_id_var.get()})
