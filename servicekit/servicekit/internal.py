"""Internal routes: callable only by the services the stack's policy names, each proving who it is.

INTERNAL_CALLERS is the one place that says which service may call which internal route. A route opts in with
`auth=ServiceAuth("<route>")` and `include_in_schema=False`, so the public API document never shows it; a route
that writes adds `@write_route`.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from ninja.decorators import decorate_view
from ninja.security import APIKeyHeader

from servicekit.api import database_unavailable
from servicekit.exceptions import ApiError
from servicekit.identity import TOKEN_HEADER
from servicekit.verification import InvalidServiceToken, verified_caller

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
            caller = verified_caller(key, request)
        except InvalidServiceToken as error:
            raise ApiError(401, "invalid_service_token", f"The service token is not valid: {error}") from None
        if caller not in allowed_callers(settings.SERVICE_NAME, self.route):
            raise ApiError(403, "caller_not_allowed", f"{caller} may not call {self.route}", {"caller": caller})
        return caller


def write_route(view: Callable) -> Callable:
    """An internal route that writes (below its @api.<method>): its token's single-use record and its writes are
    one transaction, so a call takes the database's write lock once and commits once, not twice. The route's whole
    run is that transaction, the token's check included; the view is a savepoint in it, so a write the view
    refuses (no stock, say: ninja makes the answer from the exception) is undone, and the token stays spent. A
    write that fails with no answer made (the database gone) takes the record back with it: a replay of that
    token, within its life (60 s at most), can make that same write once (docs/security.md)."""

    def in_one_transaction(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(run)
        def run_in_one_transaction(request: HttpRequest, **kwargs) -> HttpResponse:
            try:
                with transaction.atomic():
                    return run(request, **kwargs)
            except (OperationalError, InterfaceError) as error:  # beginning or committing: as the view's would
                return database_unavailable(error)

        return run_in_one_transaction

    return decorate_view(in_one_transaction)(transaction.atomic(view))
