"""`django-admin backup_database PATH`: a consistent copy of this service's SQLite database, taken while it serves.

SQLite's online backup API copies the database page by page and starts again if a writer changes it meanwhile,
so the copy is the database as of one moment: never a torn file, whatever the load. PostgreSQL is copied with
pg_dump in its own container (scripts/backup.py), which has the client this image does not.
"""

import sqlite3

from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = "Writes a consistent copy of the SQLite database to PATH."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="where the copy goes (replaced if it is there)")

    def handle(self, *args, **options) -> None:
        if connection.vendor != "sqlite":
            raise CommandError(f"backup_database copies SQLite; this database is {connection.vendor}: use pg_dump")
        connection.ensure_connection()
        with sqlite3.connect(options["path"]) as copy:
            connection.connection.backup(copy)
        copy.close()
