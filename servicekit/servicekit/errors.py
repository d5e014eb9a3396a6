"""The one error shape of the stack, {"error": {"code", "message", "details"}}, and Django's error handlers in it."""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, JsonResponse


def error_response(status: int, message: str = "", *, code: str = "", details: Any = None) -> JsonResponse:
    """A JSON error response; code and message default to the status's own name and phrase."""
    phrase = HTTPStatus(status).phrase
    body = {
        "error": {
            "code": code or phrase.lower().replace(" ", "_").replace("-", "_"),
            "message": message or phrase,
            "details": details,
        }
    }
    return JsonResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(404, f"No route for {request.path}")


def server_error(request: HttpRequest) -> JsonResponse:
    return error_response(500)
