"""The service's SECRET_KEY: given in the environment, or made on first start and kept in its data volume."""

import os
import secrets
from pathlib import Path


def read_or_create_secret_key(path: Path) -> str:
    """Returns the key stored at path, creating it first if missing; safe when several processes race."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as key_file:
        key_file.write(secrets.token_urlsafe(50))
    try:
        os.link(candidate, path)  # atomic: the first process to link wins, the others read its key
    except FileExistsError:
        pass
    finally:
        candidate.unlink()
    return path.read_text().strip()
