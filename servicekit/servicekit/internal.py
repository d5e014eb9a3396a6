"""Internal routes: callable only by the services the stack's policy names, each proving who it is.

INTERNAL_CALLERS is the one place that says which service may call which internal route. A route opts in with
`auth=ServiceAuth("<route>")` and `include_in_schema=False`, so the public API document never shows it.
"""

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyHeader

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
