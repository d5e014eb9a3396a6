"""JSON in and out of every service, with orjson: each body is encoded once, newline included, and each request
body is parsed once.

- Out: json_response() (and the API's renderer) writes the body and its closing newline in one encoding, so no
  body is copied to append one. What orjson does not know (Decimal, a pydantic model) goes to ninja's encoder,
  which gives datetimes Django's format, as before.
- In: servicekit.body parses a request's body (to refuse what is not a JSON object) and keeps the result on the
  request; the API's parser takes it from there instead of parsing the body again.
"""

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from ninja.parser import Parser
from ninja.renderers import BaseRenderer
from ninja.responses import NinjaJSONEncoder

# The request attribute servicekit.body leaves the parsed body in.
PARSED_BODY = "servicekit_parsed_body"
MEDIA_TYPE = "application/json"

_fallback = NinjaJSONEncoder()
# Datetimes go to the fallback too: Django's format (milliseconds, "Z"), as the API has always written them.
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(data: Any) -> bytes:
    """data as one JSON line, newline included."""
    return orjson.dumps(data, default=_fallback.default, option=_OPTIONS)


def json_response(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(dumps(data), content_type=MEDIA_TYPE, status=status)


def loads(body: bytes) -> Any:
    """Raises ValueError (orjson.JSONDecodeError) on anything that is not JSON in UTF-8."""
    return orjson.loads(body)


class OneLineRenderer(BaseRenderer):
    """django-ninja's renderer hook: the API's bodies encoded by orjson, newline included."""

    media_type = MEDIA_TYPE

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return dumps(data)


class ParsedOnceParser(Parser):
    """django-ninja's parser hook: the body servicekit.body has already parsed, not parsed a second time."""

    def parse_body(self, request: HttpRequest) -> Any:
        if PARSED_BODY in request.__dict__:
            return request.__dict__[PARSED_BODY]
        return loads(request.body)
