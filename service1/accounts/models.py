"""What accounts keeps beside Django's users: each username's canonical form, and bearer tokens (only their
SHA-256 is stored, so a leaked database leaks no usable token)."""

import hashlib
import unicodedata

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


def canonical_username(username: str) -> str:
    """One form for names people read as one: Unicode NFKC (compatibility forms: "ａｄａ" is "ada"), then case
    folding ("Straße" and "STRASSE", "Σίσυφος" and "σίσυφοσ"), then NFKC again, as Unicode's caseless matching
    asks."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


class CanonicalUsername(models.Model):
    """Each user's username in its canonical form, unique: two names people read as one are one account, on
    SQLite and PostgreSQL alike (LOWER() in SQLite folds ASCII only). Kept by a signal (accounts.signals) for
    every way a user is made or renamed."""

    # NFKC and folding can lengthen a name ("ß" is "ss", some ligatures are several letters): room for that.
    MAX_LENGTH = 600

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True)
    canonical = models.CharField(max_length=MAX_LENGTH, unique=True)
