"""The accounts API: register, log in, log out, who am I; and token introspection for the other services."""

from datetime import datetime
from typing import Annotated

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Schema, Status
from ninja.security import HttpBearer
from pydantic import StrictStr

from accounts import selectors, services
from accounts.errors import InvalidCredentials, LoginsBusy, PasswordRefused, UsernameTaken
from servicekit.api import create_api, errors
from servicekit.errors import error_response
from servicekit.fields import text
from servicekit.internal import ServiceAuth

api = create_api(
    title="accounts (service1)",
    description="Users and the bearer tokens every service accepts.",
    statuses={UsernameTaken: 409, InvalidCredentials: 401, LoginsBusy: 503, PasswordRefused: 400},
)

# \w refuses NUL and every other control character.
Username = Annotated[StrictStr, text(1, 150, pattern=r"^[\w.@+-]+$")]


class Credentials(Schema):
    username: Username
    password: Annotated[StrictStr, text(8, 128)]


class LoginCredentials(Schema):
    """What a login takes: any password is checked, so a wrong one of any length is the same 401. The rules for
    a new password are register's; the length bound only keeps hashing cheap."""

    username: Annotated[StrictStr, text(1, 150)]
    password: Annotated[StrictStr, text(0, 4096)]


class UserOut(Schema):
    id: int
    username: str
    is_staff: bool


class TokenOut(Schema):
    token: str
    token_type: str = "Bearer"
    expires_at: datetime


class Introspection(Schema):
    active: bool
    user: UserOut | None = None
    exp: int | None = None  # when the token expires (epoch seconds): no caller keeps the answer past it


class LocalBearer(HttpBearer):
    """Accounts checks tokens itself; the other services ask it (servicekit.auth)."""

    def authenticate(self, request: HttpRequest, token: str):
        request.raw_token = token
        return selectors.user_for_token(raw_token=token)


@api.post("/register", response={201: UserOut, **errors(409)})
def register(request: HttpRequest, credentials: Credentials):
    return Status(201, services.user_register(username=credentials.username, password=credentials.password))


@api.post("/login", response={200: TokenOut, **errors(401)})
def login(request: HttpRequest, credentials: LoginCredentials):
    raw_token, token = services.token_create(
        request=request, username=credentials.username, password=credentials.password
    )
    return TokenOut(token=raw_token, expires_at=token.expires_at)


def locked_out(request: HttpRequest, response: HttpResponse | None, credentials: dict | None) -> HttpResponse:
    """django-axes' answer for an account past its failure limit (settings.AXES_LOCKOUT_CALLABLE)."""
    lockout_seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    message = f"Too many failed logins for this account; try again in {lockout_seconds} s"
    locked = error_response(429, message, code="too_many_failed_logins", details={"retry_after": lockout_seconds})
    locked["Retry-After"] = str(lockout_seconds)
    return locked


@api.post("/logout", auth=LocalBearer(), response={204: None})
def logout(request: HttpRequest):
    services.token_revoke(raw_token=request.raw_token)
    return Status(204, None)


@api.get("/me", auth=LocalBearer(), response=UserOut)
def me(request: HttpRequest):
    return request.auth


@api.get("/internal/introspect", response=Introspection, auth=ServiceAuth("introspect"), include_in_schema=False)
def introspect(request: HttpRequest):
    """RFC 7662 in spirit: 200 with active=false for any token that is not live, so callers need one check."""
    scheme, _, raw_token = request.headers.get("Authorization", "").partition(" ")
    token = selectors.live_token(raw_token=raw_token) if scheme.lower() == "bearer" and raw_token else None
    if token is None:
        return {"active": False}
    return {"active": True, "user": token.user, "exp": int(token.expires_at.timestamp())}
