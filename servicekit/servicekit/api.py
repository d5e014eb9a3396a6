"""A django-ninja API set up the stack's way: errors in the one shape, validation as 400, the schema served.

Each service makes its API with create_api(), naming the status of each of its domain errors, and names it in its
settings (SERVICE_API) for servicekit.urls to mount.
"""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import pydantic
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema

from servicekit.errors import error_response
from servicekit.exceptions import ApiError, DependencyUnavailable, DomainError
from servicekit.jsonio import OneLineRenderer, ParsedOnceParser

log = logging.getLogger(__name__)

# The statuses every service shares; a service's own come on top (create_api's statuses).
SHARED_STATUSES: dict[type[DomainError], int] = {DependencyUnavailable: 503}
# A database that cannot be reached (a restart, a lost node) is usually back within this: the client's Retry-After.
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)


def database_unavailable(error: Exception) -> HttpResponse:
    """503 for a request whose database could not be reached: the client may try again; it is no bug (500)."""
    log.warning("database unavailable: %s", error)
    response = error_response(503, "The service's database is unavailable", code="database_unavailable")
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def is_database_error(error: pydantic.ValidationError) -> bool:
    """A response's schema read an attribute that queried the database, and the query failed: pydantic reports
    that as a failed attribute, naming the exception only in words."""
    names = tuple(f"{cls.__name__}:" for cls in DATABASE_ERRORS)
    return any(
        problem["type"] == "get_attribute_error" and str(problem.get("ctx", {}).get("error", "")).startswith(names)
        for problem in error.errors()
    )


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


def status_of(error_class: type[DomainError], statuses: Mapping[type[DomainError], int]) -> int | None:
    """The status of the error class, or of its nearest base class that has one."""
    for kind in error_class.__mro__:
        if kind in statuses:
            return statuses[kind]
    return None


class ErrorBody(Schema):
    code: str
    message: str
    details: Any = None


class ErrorOut(Schema):
    """The one error shape of the stack (servicekit.errors.error_response)."""

    error: ErrorBody


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """What a route answers besides what every route may (documented_errors): `response={201: X, **errors(409)}`."""
    return dict.fromkeys(statuses, ErrorOut)


WRITES = {"post", "put", "patch", "delete"}


def documented_errors(path: str, method: str, operation: dict) -> dict[int, str]:
    """The errors an operation may answer whatever the service: from its input, its auth, the gateway's limits."""
    found = {503: "The service, or one it needs, is unavailable (service_unavailable, dependency_unavailable)"}
    if operation.get("parameters") or operation.get("requestBody"):
        found[400] = "The request is not valid: each wrong field is named (validation_error)"
    if operation.get("requestBody"):
        found[413] = f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (payload_too_large)"
        found[415] = "The body is not JSON (unsupported_media_type)"
    if operation.get("security"):
        found[401] = "No valid bearer token (unauthorized)"
    if "{" in path:
        found[404] = "No such resource (not_found)"
    if method in WRITES:
        found[429] = "Too many requests from this client; see Retry-After (too_many_requests)"
    return found


class ServiceApi(NinjaAPI):
    """A service's API, which knows the status each of its domain errors is answered with, and documents every
    error a route may answer and where the API is served."""

    domain_statuses: Mapping[type[DomainError], int] = SHARED_STATUSES

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema["servers"] = [{"url": "/", "description": "the gateway this document was read through"}]
        reference = {"$ref": "#/components/schemas/ErrorOut"}
        schema.setdefault("components", {}).setdefault("schemas", {})["ErrorOut"] = ErrorOut.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status, description in documented_errors(path, method, operation).items():
                    responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    if int(status) >= 400:
                        response["content"] = {"application/json": {"schema": reference}}
                        if response.get("description") in (None, "", "OK"):
                            response["description"] = HTTPStatus(int(status)).phrase
        return schema


def create_api(*, title: str, description: str, statuses: Mapping[type[DomainError], int] | None = None) -> ServiceApi:
    """statuses: the HTTP status each of the service's DomainError classes is answered with."""
    all_statuses = {**SHARED_STATUSES, **(statuses or {})}
    api = ServiceApi(
        title=title,
        description=description,
        version="1.0.0",
        openapi_url="/openapi.json",
        docs_url="/docs",
        urls_namespace="api",
        renderer=OneLineRenderer(),
        parser=ParsedOnceParser(),
    )

    api.domain_statuses = all_statuses

    @api.exception_handler(DomainError)
    def refused(request: HttpRequest, error: DomainError) -> HttpResponse:
        status = status_of(type(error), all_statuses)
        if status is None:  # a bug: the API forgot to name this error's status
            log.error("no status for %s", type(error).__name__)
            raise error
        response = error_response(status, error.message, code=error.code, details=error.details)
        if error.retry_after is not None:
            response["Retry-After"] = str(error.retry_after)
        return response

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

    @api.exception_handler(OperationalError)
    @api.exception_handler(InterfaceError)
    def no_database(request: HttpRequest, error: OperationalError | InterfaceError) -> HttpResponse:
        return database_unavailable(error)

    @api.exception_handler(pydantic.ValidationError)
    def response_not_made(request: HttpRequest, error: pydantic.ValidationError) -> HttpResponse:
        if is_database_error(error):
            return database_unavailable(error)
        raise error  # a bug: the response does not match its schema (500)

    return api
