"""Reads of the accounts service."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.models import Token, token_hash


@dataclass(frozen=True)
class TokenUser:
    """Who a live token stands for: what /me and introspection answer of a user."""

    id: int
    username: str
    is_staff: bool


@dataclass(frozen=True)
class LiveToken:
    user: TokenUser
    expires_at: datetime


def live_token(*, raw_token: str) -> LiveToken | None:
    """The live token of an active user, or None. Every authenticated request at accounts, and every
    introspection, asks: one lookup by the unique hash of the few columns it needs (no model is built), the rest
    checked on the row. A query with every condition and first()'s ordering, then two models, cost /me about a
    fifth of its rate."""
    columns = ("expires_at", "user_id", "user__username", "user__is_staff", "user__is_active")
    try:
        expires_at, user_id, username, is_staff, is_active = Token.objects.values_list(*columns).get(
            key_hash=token_hash(raw_token)
        )
    except Token.DoesNotExist:
        return None
    if expires_at <= timezone.now() or not is_active:
        return None
    return LiveToken(TokenUser(user_id, username, is_staff), expires_at)


def user_for_token(*, raw_token: str) -> TokenUser | None:
    """The active user a live token belongs to, or None."""
    token = live_token(raw_token=raw_token)
    return token.user if token else None
