"""Reads of the accounts service."""

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from accounts.models import Token, token_hash


def user_for_token(*, raw_token: str) -> AbstractBaseUser | None:
    """The active user a live token belongs to, or None."""
    token = (
        Token.objects.select_related("user")
        .filter(key_hash=token_hash(raw_token), expires_at__gt=timezone.now(), user__is_active=True)
        .first()
    )
    return token.user if token else None
