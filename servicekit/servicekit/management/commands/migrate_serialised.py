"""`django-admin migrate_serialised`: Django's migrate, applied by one replica at a time.

Replicas that start together would otherwise race to apply the same migrations. On PostgreSQL the lock is the
database's own (an advisory lock, which holds across hosts); on SQLite it is a file lock beside the database file,
which every replica on its host shares.
"""

import fcntl
import logging
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection

# Any number names the lock, as long as every replica uses the same one; each service has a database of its own.
ADVISORY_LOCK_KEY = zlib.crc32(b"servicekit.migrate")
# A database may start after its service (Swarm starts them together, with no order): it is waited for this long.
DATABASE_WAIT_SECONDS = 60
SAY_EVERY_SECONDS = 5
log = logging.getLogger(__name__)


def wait_for_database(seconds: float) -> None:
    """Returns once the database answers; meanwhile says every few seconds what it answered instead (a wrong
    password waits as long as a database still starting, and only its own words tell them apart)."""
    started = time.monotonic()
    said_at = started
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError as error:
            waited = time.monotonic() - started
            if waited > seconds:
                raise CommandError(f"the database did not answer within {seconds:.0f} s: {error}") from error
            if time.monotonic() - said_at >= SAY_EVERY_SECONDS:
                log.warning("waiting for the database (%.0f s of %.0f): %s", waited, seconds, str(error).strip())
                said_at = time.monotonic()
            time.sleep(1)


@contextmanager
def advisory_lock() -> Iterator[None]:
    """Held by this database session until released; another session asking for it waits."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def migration_lock():
    if connection.vendor == "postgresql":
        return advisory_lock()
    return file_lock(Path(settings.DATA_DIR) / ".migrate.lock")


class Command(BaseCommand):
    help = "Applies the migrations, one replica at a time."

    def handle(self, *args, **options) -> None:
        wait_for_database(DATABASE_WAIT_SECONDS)
        with migration_lock():
            call_command("migrate", interactive=False, verbosity=options["verbosity"], stdout=self.stdout)
