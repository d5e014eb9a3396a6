"""Secrets a service makes on first start and keeps in its data volume: its SECRET_KEY and its identity key."""

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """Returns the text stored at path, writing make() there first if missing; safe when several processes race."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as key_file:
        key_file.write(make())
    try:
        os.link(candidate, path)  # atomic: the first process to link wins, the others read its key
    except FileExistsError:
        pass
    finally:
        candidate.unlink()
    return path.read_text().strip()


def read_or_create_secret_key(path: Path) -> str:
    return read_or_create(path, lambda: secrets.token_urlsafe(50))
