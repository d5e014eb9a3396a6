"""Who a service is to the others: an Ed25519 key of its own, and a short-lived signed token on every call.

The private key is made on first start in the service's data volume (or given as a file, a Docker secret say:
SERVICE_KEY_FILE). Its public half is published in the service's socket volume, which only the gateway reads;
the gateway serves it at /keys/<service> on its internal listener. A caller signs a JWT naming itself (iss) and
the service it calls (aud); the callee checks the signature with the caller's published key. A token is valid
for seconds and for one callee, so a callee cannot replay it elsewhere.
"""

import os
import re
import threading
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from servicekit.keys import read_or_create

ALGORITHM = "EdDSA"
# The header a call between services carries its token in (Authorization stays the end user's). A header's name,
# not a secret, whatever bandit's B105 guesses from the word "token".
TOKEN_HEADER = "X-Service-Token"  # nosec B105
PUBLIC_KEY_NAME = "service.pub"
# How long a published key is trusted before it is fetched again (a service that rotated its key).
PUBLIC_KEY_CACHE_SECONDS = 60
# A service's name as the gateway serves its key (/keys/<name>, nginx/conf.d/internal.conf).
SERVICE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,50}")
# Clock differences between containers that a token's times tolerate.
LEEWAY_SECONDS = 5


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


_issued: dict[str, tuple[str, float]] = {}


def service_token(audience: str) -> str:
    """A token that proves this service is calling audience; reused until it is half-way to expiry."""
    now = time.time()
    cached = _issued.get(audience)
    if cached and cached[1] > now:
        return cached[0]
    lifetime = settings.SERVICE_TOKEN_SECONDS
    claims = {"iss": settings.SERVICE_NAME, "aud": audience, "iat": int(now), "exp": int(now + lifetime)}
    token = jwt.encode(claims, private_key(), algorithm=ALGORITHM)
    _issued[audience] = (token, now + lifetime / 2)
    return token


class PublicKeys:
    """The other services' published keys, fetched from the gateway and kept for a minute."""

    def __init__(self):
        self._keys: dict[str, tuple[Ed25519PublicKey | None, float]] = {}
        self._lock = threading.Lock()

    def remember(self, service: str, pem: str | None) -> None:
        loaded = serialization.load_pem_public_key(pem.encode()) if pem else None
        key = loaded if isinstance(loaded, Ed25519PublicKey) else None  # any other kind verifies nothing
        with self._lock:
            self._keys[service] = (key, time.monotonic() + PUBLIC_KEY_CACHE_SECONDS)

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()

    def of(self, service: str) -> Ed25519PublicKey | None:
        with self._lock:
            cached = self._keys.get(service)
        if cached is None or cached[1] < time.monotonic():
            self.remember(service, fetch_public_key(service))
            cached = self._keys[service]
        return cached[0]


def fetch_public_key(service: str) -> str | None:
    """The key the gateway serves for service, or None when it knows no such service."""
    from servicekit.http import gateway_get  # http signs calls with this module's tokens

    response = gateway_get(f"/keys/{service}")
    return response.text if response.status_code == 200 else None


public_keys = PublicKeys()


def verified_caller(token: str) -> str:
    """The name of the service that signed token for this service; raises InvalidServiceToken otherwise."""
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
        jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.SERVICE_NAME,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "iat", "exp"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidServiceToken(str(error)) from None
    return issuer
