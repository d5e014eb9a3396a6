"""Writes of the accounts service: registering, logging in and out."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.capacity import password_check_slot
from accounts.errors import InvalidCredentials, PasswordRefused, UsernameTaken
from accounts.models import Token, token_hash

User = get_user_model()


def user_register(*, username: str, password: str) -> AbstractBaseUser:
    password_check(password=password, user=User(username=username))
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password)
    except IntegrityError:
        raise UsernameTaken(f"The username {username!r} is taken") from None


def password_check(*, password: str, user: AbstractBaseUser) -> None:
    """Raises PasswordRefused when the password breaks a rule of AUTH_PASSWORD_VALIDATORS: the one rule for every
    way of making a user, /register and createsuperuser alike."""
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise PasswordRefused(list(error.messages)) from None


def token_create(*, request: HttpRequest, username: str, password: str) -> tuple[str, Token]:
    """Checks the password (deliberately slow: Django's default hasher cost) and issues a new token.

    The request goes to authenticate() for django-axes, which counts this account's failures and, past its limit,
    refuses before any hashing (accounts.api.locked_out answers then).
    """
    with password_check_slot():
        user = authenticate(request, username=username, password=password)
    if user is None:
        raise InvalidCredentials("Wrong username or password")
    # Issuing a token is this API's login: the signal clears axes' failure count (and sets last_login).
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    raw_token = secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(seconds=settings.TOKEN_LIFETIME_SECONDS)
    token = Token.objects.create(key_hash=token_hash(raw_token), user=user, expires_at=expires_at)
    return raw_token, token


def token_revoke(*, raw_token: str) -> None:
    Token.objects.filter(key_hash=token_hash(raw_token)).delete()


def token_purge_expired() -> int:
    """Deletes every expired token; returns how many."""
    deleted, _ = Token.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
