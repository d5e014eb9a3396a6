"""A django-ninja API set up the stack's way: errors in the one shape, validation as 400, the schema served.

Each service makes its API with create_api() and mounts it with servicekit.urls.service_urlpatterns().
"""

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from servicekit.errors import error_response
from servicekit.exceptions import ApiError


def validation_details(errors: list[dict]) -> list[dict]:
    """ninja's pydantic errors, as field paths and messages a client can show."""
    return [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "message": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in errors
    ]


def create_api(*, title: str, description: str) -> NinjaAPI:
    api = NinjaAPI(
        title=title,
        description=description,
        version="1.0.0",
        openapi_url="/openapi.json",
        docs_url=None,
        urls_namespace="api",
    )

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, error: ApiError) -> HttpResponse:
        response = error_response(error.status, error.message, code=error.code, details=error.details)
        for header, value in error.headers.items():
            response[header] = value
        return response

    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
        details = validation_details(error.errors)
        return error_response(400, "The request is not valid", code="validation_error", details=details)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
        response = error_response(401, "A valid bearer token is required", code="unauthorized")
        response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(AuthorizationError)
    def forbidden(request: HttpRequest, error: AuthorizationError) -> HttpResponse:
        return error_response(403, str(error) or "Forbidden", code="forbidden")

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
        return error_response(error.status_code, str(error))

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, error: Http404) -> HttpResponse:
        return error_response(404, str(error) or "Not found")

    return api
