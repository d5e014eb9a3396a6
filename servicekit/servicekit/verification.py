"""Who calls: the callee's half of service identity (the signing half is servicekit.identity). A token on an
internal call is checked against the key its issuer published, which the gateway serves at /keys/<service> and
which is kept here for a minute; it must name this service, this very request (method, path, body's digest),
live at most MAX_TOKEN_SECONDS, and be presented once: the id (jti) of every token accepted is kept until it
expires (servicekit.models.AcceptedServiceToken), in the callee's own database, so every worker and replica of
the callee refuses it a second time.
"""

import datetime
import re
import threading
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from servicekit.http import gateway_get
from servicekit.identity import ALGORITHM, REQUEST_CLAIMS, body_digest

# How long a published key is trusted before it is fetched again (a service that rotated its key).
PUBLIC_KEY_CACHE_SECONDS = 60
# A signature the kept key does not verify makes the key be fetched again, at most this often per service: a
# service that made a new key (its data volume lost and restored) is trusted again at once, not in a minute.
PUBLIC_KEY_REFRESH_SECONDS = 5
# A service's name as the gateway serves its key (/keys/<name>, nginx/conf.d/internal.conf).
SERVICE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,50}")
# Clock differences between containers that a token's times tolerate.
LEEWAY_SECONDS = 5
# The longest a token may live, from iat to exp, whatever its issuer set: a stolen one is soon worth nothing.
MAX_TOKEN_SECONDS = 60


class InvalidServiceToken(Exception):
    """The token is missing, malformed, expired, for another service, or not signed by the service it names."""


class PublicKeys:
    """The other services' published keys, fetched from the gateway and kept for a minute."""

    def __init__(self):
        self._keys: dict[str, tuple[Ed25519PublicKey | None, float]] = {}  # service: (key, when fetched)
        self._lock = threading.Lock()

    def remember(self, service: str, pem: str | None) -> None:
        loaded = serialization.load_pem_public_key(pem.encode()) if pem else None
        key = loaded if isinstance(loaded, Ed25519PublicKey) else None  # any other kind verifies nothing
        with self._lock:
            self._keys[service] = (key, time.monotonic())

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()

    def of(self, service: str) -> Ed25519PublicKey | None:
        with self._lock:
            cached = self._keys.get(service)
        if cached is None or time.monotonic() - cached[1] > PUBLIC_KEY_CACHE_SECONDS:
            self.remember(service, fetch_public_key(service))
            cached = self._keys[service]
        return cached[0]

    def refreshed(self, service: str) -> Ed25519PublicKey | None:
        """The service's key fetched again, if the kept one is older than PUBLIC_KEY_REFRESH_SECONDS; else None."""
        with self._lock:
            cached = self._keys.get(service)
        if cached is not None and time.monotonic() - cached[1] < PUBLIC_KEY_REFRESH_SECONDS:
            return None
        self.remember(service, fetch_public_key(service))
        return self._keys[service][0]


def fetch_public_key(service: str) -> str | None:
    """The key the gateway serves for service, or None when it knows no such service."""
    response = gateway_get(f"/keys/{service}")
    return response.text if response.status_code == 200 else None


public_keys = PublicKeys()


def verified_caller(token: str, request: HttpRequest) -> str:
    """The name of the service that signed token for this very request to this service, accepted once; raises
    InvalidServiceToken otherwise."""
    issuer, claims = checked_token(token, request)
    accept_once(claims)
    return issuer


def checked_token(token: str, request: HttpRequest) -> tuple[str, dict]:
    """The issuer and claims of a token signed for this very request to this service, not yet accepted (a write
    route accepts it in its write's transaction: servicekit.internal.write_route); raises InvalidServiceToken."""
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError as error:
        raise InvalidServiceToken(f"malformed token: {error}") from None
    if not isinstance(issuer, str) or not SERVICE_NAME_PATTERN.fullmatch(issuer):
        raise InvalidServiceToken("the token names no valid issuer")
    key = public_keys.of(issuer)
    if key is None:
        raise InvalidServiceToken(f"no published key for {issuer!r}")
    try:
        claims = decoded(token, key, issuer)
    except jwt.InvalidSignatureError as error:
        refreshed = public_keys.refreshed(issuer)  # the issuer may have made a new key since it was fetched
        if refreshed is None or refreshed == key:
            raise InvalidServiceToken(str(error)) from None
        try:
            claims = decoded(token, refreshed, issuer)
        except jwt.InvalidSignatureError as still:
            raise InvalidServiceToken(str(still)) from None
    check_lifetime(claims)
    check_bound_to(claims, request)
    return issuer, claims


def decoded(token: str, key: Ed25519PublicKey, issuer: str) -> dict:
    """The token's claims, verified with key; jwt.InvalidSignatureError when key did not sign it, and
    InvalidServiceToken for anything else wrong with it."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.SERVICE_NAME,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "iat", "exp", "jti", *REQUEST_CLAIMS]},
        )
    except jwt.InvalidSignatureError:
        raise
    except jwt.PyJWTError as error:
        raise InvalidServiceToken(str(error)) from None


def check_lifetime(claims: dict) -> None:
    issued, expires = claims["iat"], claims["exp"]
    if not (isinstance(issued, int) and isinstance(expires, int)) or expires - issued > MAX_TOKEN_SECONDS:
        raise InvalidServiceToken(f"a token may live at most {MAX_TOKEN_SECONDS} s")


def check_bound_to(claims: dict, request: HttpRequest) -> None:
    expected = {"htm": request.method, "htu": request.get_full_path(), "bdh": body_digest(request.body)}
    for claim, value in expected.items():
        if claims[claim] != value:
            raise InvalidServiceToken(f"the token was made for another request ({claim})")


# Every this many accepted tokens, a worker deletes the expired ids: the table holds about a minute of calls.
PRUNE_EVERY = 200
_accepted_since_prune = 0


def accept_once(claims: dict) -> None:
    """Records the token's id until it expires; raises InvalidServiceToken when it was accepted before."""
    global _accepted_since_prune
    from servicekit.models import AcceptedServiceToken

    jti = claims["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= AcceptedServiceToken.JTI_LENGTH:
        raise InvalidServiceToken("the token's id (jti) is not valid")
    expires_at = datetime.datetime.fromtimestamp(claims["exp"] + LEEWAY_SECONDS, tz=datetime.UTC)
    # One statement, on every internal call: the unique id decides, and no row means it was there already.
    table = connection.ops.quote_name(AcceptedServiceToken._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (jti, expires_at) VALUES (%s, %s) ON CONFLICT (jti) DO NOTHING",  # nosec B608
            [jti, connection.ops.adapt_datetimefield_value(expires_at)],
        )
        accepted = cursor.rowcount == 1
    if not accepted:
        raise InvalidServiceToken("the token was used already")
    _accepted_since_prune += 1
    if _accepted_since_prune >= PRUNE_EVERY:
        _accepted_since_prune = 0
        AcceptedServiceToken.objects.filter(expires_at__lt=timezone.now()).delete()
