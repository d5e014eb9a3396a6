"""Who is calling: a bearer token, checked by the accounts service's introspection endpoint."""

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from servicekit.http import client_for


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    is_staff: bool


def introspect(token: str) -> Caller | None:
    """The token's user, or None when the token is unknown, expired or revoked."""
    response = client_for(settings.ACCOUNTS_SERVICE).request(
        "GET", "/internal/introspect", headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code != 200:
        return None
    body = response.json()
    if not body.get("active"):
        return None
    user = body["user"]
    return Caller(user_id=user["id"], username=user["username"], is_staff=user["is_staff"])


class BearerAuth(HttpBearer):
    """ninja auth for services other than accounts: request.auth becomes the Caller."""

    def authenticate(self, request: HttpRequest, token: str) -> Caller | None:
        return introspect(token)


def require_staff(caller: Caller) -> None:
    if not caller.is_staff:
        raise AuthorizationError(message="Only staff may do this")
