"""A bearer token: only its SHA-256 is stored, so a leaked database leaks no usable token."""

import hashlib

from django.conf import settings
from django.db import models


def token_hash(raw_token: str) -> str:
    """What is stored of a token, and looked up by."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


class Token(models.Model):
    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
