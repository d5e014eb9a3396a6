"""Writes of the accounts service: registering, logging in and out."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Token
from servicekit.exceptions import ApiError

User = get_user_model()


def token_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def user_register(*, username: str, password: str) -> AbstractBaseUser:
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password)
    except IntegrityError:
        raise ApiError(409, "username_taken", f"The username {username!r} is taken") from None


def token_create(*, username: str, password: str) -> tuple[str, Token]:
    """Checks the password (deliberately slow: Django's default hasher cost) and issues a new token."""
    user = authenticate(username=username, password=password)
    if user is None:
        raise ApiError(401, "invalid_credentials", "Wrong username or password")
    raw_token = secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(seconds=settings.TOKEN_LIFETIME_SECONDS)
    token = Token.objects.create(key_hash=token_hash(raw_token), user=user, expires_at=expires_at)
    return raw_token, token


def token_revoke(*, raw_token: str) -> None:
    Token.objects.filter(key_hash=token_hash(raw_token)).delete()
