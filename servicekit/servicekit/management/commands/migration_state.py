"""`django-admin migration_state`: this service's database and migrations as one JSON object, for make backup and
make restore (scripts/backup.py): which database, the migrations applied to it, and those this release knows."""

import json

from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.loader import MigrationLoader


class Command(BaseCommand):
    help = "Prints the database's vendor, its applied migrations and this release's, as JSON."

    def handle(self, *args, **options) -> None:
        loader = MigrationLoader(connection)
        applied: dict[str, list[str]] = {}
        known: dict[str, list[str]] = {}
        for app, name in sorted(loader.applied_migrations):
            applied.setdefault(app, []).append(name)
        for app, name in sorted(loader.disk_migrations):
            known.setdefault(app, []).append(name)
        self.stdout.write(json.dumps({"vendor": connection.vendor, "applied": applied, "known": known}))
