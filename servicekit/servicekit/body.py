"""Refuses a request body that is not JSON, not parseable, not a JSON object or too large, before any view sees
it. Every route that takes a body takes an object: ninja would read the fields of anything else as missing.

It runs once the URL is resolved, so an unknown path is still a 404 whatever its body. The body it parsed stays on
the request, where the API's parser takes it (servicekit.jsonio): parsed once.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from servicekit.errors import error_response
from servicekit.jsonio import MEDIA_TYPE, PARSED_BODY, loads

METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class JsonBodyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view, view_args, view_kwargs) -> HttpResponse | None:
        if request.method not in METHODS_WITH_BODY:
            return None
        return self.refusal(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        too_large = f"The body may be at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
        if declared_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return error_response(413, too_large)
        try:
            body = request.body
        except RequestDataTooBig:  # no Content-Length (chunked): Django stops reading at the limit
            return error_response(413, too_large)
        if not body:
            return None
        if request.content_type != MEDIA_TYPE:
            return error_response(415, "The body must be JSON (Content-Type: application/json)")
        try:
            parsed = loads(body)
        except ValueError as error:  # orjson's JSONDecodeError: not JSON, not UTF-8, or nested too deeply
            return error_response(400, f"The body is not valid JSON: {error}", code="malformed_json")
        if not isinstance(parsed, dict):
            details = [{"field": "body", "message": "The body must be a JSON object", "type": "object_type"}]
            return error_response(400, "The request is not valid", code="validation_error", details=details)
        request.__dict__[PARSED_BODY] = parsed
        return None
