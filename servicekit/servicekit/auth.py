"""Who is calling: a bearer token, checked by the accounts service's introspection endpoint.

Each worker keeps the answer about a live token for INTROSPECTION_CACHE_SECONDS (never past the token's own
expiry), as RFC 7662 (section 4) lets a resource server do: a user's next requests within that time cost no call
to accounts. The price is that a token revoked at accounts (a logout) is still accepted here for at most that
long (docs/security.md). An unknown, expired or revoked token is never kept: it is asked about every time.
"""

import hashlib
import threading
import time
from dataclasses import dataclass

from cachetools import TLRUCache
from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from servicekit.http import client_for

# Live tokens a worker remembers at most: the least recently used goes first.
CACHED_TOKENS = 10_000


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    is_staff: bool


class IntrospectionCache:
    """Callers by token, each kept until a deadline on clock() (monotonic seconds); safe across a worker's
    threads. Keyed by the token's digest: the cache never holds a token itself."""

    def __init__(self, clock=time.monotonic, size: int = CACHED_TOKENS):
        self._callers: TLRUCache = TLRUCache(size, ttu=lambda _key, kept, _now: kept[1], timer=clock)
        self._clock = clock
        self._lock = threading.Lock()

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Caller | None:
        with self._lock:
            kept = self._callers.get(self.key(token))
        return kept[0] if kept else None

    def keep(self, token: str, caller: Caller, seconds: float) -> None:
        """Keeps caller for token during seconds from now (nothing if seconds is not positive)."""
        if seconds > 0:
            with self._lock:
                self._callers[self.key(token)] = (caller, self._clock() + seconds)

    def clear(self) -> None:
        with self._lock:
            self._callers.clear()


introspections = IntrospectionCache()


def introspect(token: str) -> Caller | None:
    """The token's user, or None when the token is unknown, expired or revoked."""
    caller = introspections.get(token)
    if caller is not None:
        return caller
    response = client_for(settings.ACCOUNTS_SERVICE).request(
        "GET", "/internal/introspect", headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code != 200:
        return None
    body = response.json()
    if not body.get("active"):
        return None
    user = body["user"]
    caller = Caller(user_id=user["id"], username=user["username"], is_staff=user["is_staff"])
    expires_in = body["exp"] - time.time() if isinstance(body.get("exp"), int | float) else 0
    introspections.keep(token, caller, min(settings.INTROSPECTION_CACHE_SECONDS, expires_in))
    return caller


class BearerAuth(HttpBearer):
    """ninja auth for services other than accounts: request.auth becomes the Caller."""

    def authenticate(self, request: HttpRequest, token: str) -> Caller | None:
        return introspect(token)


def require_staff(caller: Caller) -> None:
    if not caller.is_staff:
        raise AuthorizationError(message="Only staff may do this")
