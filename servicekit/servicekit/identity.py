"""Who a service is to the others: an Ed25519 key of its own, and a short-lived signed token on every call.

The private key is made on first start in the service's data volume (or given as a file, a Docker secret say:
SERVICE_KEY_FILE). Its public half is published in the service's socket volume, which only the gateway reads;
the gateway serves it at /keys/<service> on its internal listener. A caller signs a JWT naming itself (iss) and
the service it calls (aud); the callee checks the signature with the caller's published key.

A token is worth one request, once: it names the callee, the method, the path and a digest of the body, it lives
at most MAX_TOKEN_SECONDS (the callee checks iat and exp, whatever the caller chose), and the callee keeps the id
(jti) of every token it accepted until the token expires (servicekit.models.AcceptedServiceToken), in its own
database, so every worker and replica of the callee refuses it a second time.
"""

import base64
import datetime
import hashlib
import os
import re
import threading
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from servicekit.keys import read_or_create

ALGORITHM = "EdDSA"
# The header a call between services carries its token in (Authorization stays the end user's). A header's name,
# not a secret, whatever bandit's B105 guesses from the word "token".
TOKEN_HEADER = "X-Service-Token"  # nosec B105
PUBLIC_KEY_NAME = "service.pub"
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
# What binds a token to its request: method, path (with its query) and the body's digest.
REQUEST_CLAIMS = ("htm", "htu", "bdh")


class InvalidServiceToken(Exception):
    """The token is missing, malformed, expired, for another service, or not signed by the service it names."""


def new_private_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_pem(private_key: Ed25519PrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


_private_key: Ed25519PrivateKey | None = None


def private_key() -> Ed25519PrivateKey:
    global _private_key
    if _private_key is None:
        if settings.SERVICE_KEY_FILE:
            pem = Path(settings.SERVICE_KEY_FILE).read_text()
        else:
            pem = read_or_create(Path(settings.DATA_DIR) / "service_key.pem", new_private_key_pem)
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ImproperlyConfigured(f"the service key must be an Ed25519 key, not {type(key).__name__}")
        _private_key = key
    return _private_key


def publish_public_key(directory: Path) -> Path:
    """Writes this service's public key where the gateway serves it from; atomic, so readers never see half."""
    path = directory / PUBLIC_KEY_NAME
    staged = directory / f".{PUBLIC_KEY_NAME}.{os.getpid()}"
    staged.write_text(public_key_pem(private_key()))
    staged.chmod(0o644)
    staged.replace(path)
    return path


def body_digest(body: bytes | str | None) -> str:
    """The body's SHA-256, base64url without padding (an empty body has one too)."""
    data = body.encode() if isinstance(body, str) else (body or b"")
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def service_token(audience: str, method: str, path: str, body: bytes | str | None = None) -> str:
    """A token that proves this service is calling audience with this one request (path with its query)."""
    now = int(time.time())
    claims = {
        "iss": settings.SERVICE_NAME,
        "aud": audience,
        "iat": now,
        "exp": now + settings.SERVICE_TOKEN_SECONDS,
        "jti": uuid.uuid4().hex,
        "htm": method.upper(),
        "htu": path,
        "bdh": body_digest(body),
    }
    return jwt.encode(claims, private_key(), algorithm=ALGORITHM)


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
    from servicekit.http import gateway_get  # http signs calls with this module's tokens

    response = gateway_get(f"/keys/{service}")
    return response.text if response.status_code == 200 else None


public_keys = PublicKeys()


def verified_caller(token: str, request: HttpRequest) -> str:
    """The name of the service that signed token for this very request to this service, accepted once; raises
    InvalidServiceToken otherwise."""
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
    accept_once(claims)
    return issuer


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
