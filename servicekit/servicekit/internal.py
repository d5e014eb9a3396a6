"""Internal routes: callable only by the services the stack's policy names, each proving who it is.

INTERNAL_CALLERS is the one place that says which service may call which internal route. A route opts in with
`auth=ServiceAuth("<route>")` and `include_in_schema=False`, so the public API document never shows it; a route
that writes adds `@write_route`.
"""

from collections.abc import Callable
from contextlib import suppress
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse
from ninja.decorators import decorate_view
from ninja.security import APIKeyHeader

from servicekit.exceptions import ApiError
from servicekit.identity import TOKEN_HEADER
from servicekit.verification import InvalidServiceToken, accept_once, checked_token, verified_caller

# Receiving service -> its internal route -> the services that may call it.
INTERNAL_CALLERS: dict[str, dict[str, frozenset[str]]] = {
    "service1": {"introspect": frozenset({"service2", "service3", "service4"})},
    "service2": {"reservations": frozenset({"service3"})},
    "service4": {"events": frozenset({"service3"})},
}


def allowed_callers(service: str, route: str) -> frozenset[str]:
    return INTERNAL_CALLERS.get(service, {}).get(route, frozenset())


class ServiceAuth(APIKeyHeader):
    """ninja auth for an internal route: request.auth becomes the calling service's name."""

    param_name = TOKEN_HEADER

    def __init__(self, route: str):
        self.route = route
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> str:
        if not key:
            raise ApiError(401, "service_token_required", f"An internal route needs a {TOKEN_HEADER} header")
        try:
            if getattr(request, WRITE_ROUTE, False):  # accepted in the write's transaction (write_route)
                caller, request.unspent_service_token = checked_token(key, request)
            else:
                caller = verified_caller(key, request)
        except InvalidServiceToken as error:
            raise ApiError(401, "invalid_service_token", f"The service token is not valid: {error}") from None
        if caller not in allowed_callers(settings.SERVICE_NAME, self.route):
            raise ApiError(403, "caller_not_allowed", f"{caller} may not call {self.route}", {"caller": caller})
        return caller


# Set on a request to a write_route before its token is checked: the token is accepted by the write, not before.
WRITE_ROUTE = "is_write_route"


def write_route(view: Callable) -> Callable:
    """An internal route that writes (below its @api.<method>): its token's single-use record and its writes are
    one transaction, so a call takes the database's write lock once and commits once, not twice. The transaction
    begins once the token has been checked (its signature and claims are no work to do under the lock). A write
    the view refuses (no stock, say) is undone with the record; the token is then spent on its own, so it stays
    worth one call. A write that fails with no answer made and whose token cannot be recorded either (the database
    gone) leaves the token unspent: a replay of it, within its life (60 s at most), can make that same write once
    (docs/security.md)."""

    @wraps(view)
    def write_with_its_token(request: HttpRequest, *args, **kwargs):
        with transaction.atomic():
            spend_token(request)
            result = view(request, *args, **kwargs)
        request.unspent_service_token = None  # committed with the write
        return result

    def token_spent_whatever_happened(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(run)
        def run_write_route(request: HttpRequest, **kwargs) -> HttpResponse:
            setattr(request, WRITE_ROUTE, True)
            response = run(request, **kwargs)
            if getattr(request, "unspent_service_token", None) is not None:  # refused, or failed
                # Used already (its answer says so), or no database to record it in.
                with suppress(InvalidServiceToken, DatabaseError):
                    accept_once(request.unspent_service_token)
            return response

        return run_write_route

    return decorate_view(token_spent_whatever_happened)(write_with_its_token)


def spend_token(request: HttpRequest) -> None:
    """Records the request's checked token as accepted; a replayed one is a 401, as ServiceAuth would answer."""
    try:
        accept_once(request.unspent_service_token)
    except InvalidServiceToken as error:
        request.unspent_service_token = None  # nothing to spend: it was spent before
        raise ApiError(401, "invalid_service_token", f"The service token is not valid: {error}") from None
