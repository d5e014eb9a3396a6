"""`django-admin migration_state`: this service's database and migrations as one JSON object, for make backup and
make restore (scripts/backup.py): which service and database, the migrations applied to it, those this release
knows, and the apps that are the service's own (in its folder: what no other service's database holds)."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from servicekit.apps import app_labels_in


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
        own = sorted(app_labels_in(Path(settings.BASE_DIR)))
        state = {"service": settings.SERVICE_NAME, "vendor": connection.vendor, "applied": applied, "known": known}
        self.stdout.write(json.dumps({**state, "own_apps": [app for app in own if app in known]}))
