"""Who a service is to the others, the signing half: an Ed25519 key of its own, and a short-lived signed token on
every call it makes (servicekit.http adds it). The callee's half, checking such a token, is servicekit.verification.

The private key is made on first start in the service's data volume (or given as a file, a Docker secret say:
SERVICE_KEY_FILE). Its public half is published in the service's socket volume, which only the gateway reads;
the gateway serves it at /keys/<service> on its internal listener. A caller signs a JWT naming itself (iss) and
the service it calls (aud); the callee checks the signature with the caller's published key.

A token is worth one request, once: it names the callee, the method, the path and a digest of the body, it lives
at most a minute (the callee checks iat and exp, whatever the caller chose), and the callee keeps the id
(jti) of every token it accepted until the token expires (servicekit.models.AcceptedServiceToken), in its own
database, so every worker and replica of the callee refuses it a second time.
"""

import base64
import hashlib
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from servicekit.keys import read_or_create

ALGORITHM = "EdDSA"
# The header a call between services carries its token in (Authorization stays the end user's). A header's name,
# not a secret, whatever bandit's B105 guesses from the word "token".
TOKEN_HEADER = "X-Service-Token"  # nosec B105
PUBLIC_KEY_NAME = "service.pub"
# What binds a token to its request: method, path (with its query) and the body's digest.
REQUEST_CLAIMS = ("htm", "htu", "bdh")


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
