"""`django-admin check_migrations`: refuses a migration the release before it cannot run against, by what it does
to the schema (servicekit.schema_changes), before a deploy starts a replica that would apply it.

During a deploy the new replicas migrate the database while the old ones still serve it (docs/adr/0006), so a
migration may only expand the schema. The check applies every migration of the service (its own apps' and
servicekit's) one at a time to a scratch database, and compares the schema before and after each: on SQLite
always, and on the service's database server too when it has one (a scratch database there, dropped after). It
never opens the service's own database.

A migration that breaks the running release but is safe says why, as an attribute of its Migration class, and is
let through, its reason printed by every check (and so by every deploy) that carries it:

    class Migration(migrations.Migration):
        accept_backward_incompatible = "release 2026.12 stopped reading Product.updated_at"
"""

import os
import secrets
import subprocess  # nosec B404 (its own passes: this Python, this command)
import sys
import tempfile
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ProjectState

from servicekit.apps import app_labels_in
from servicekit.schema_changes import Schema, breaking_changes, snapshot

SAFE_SEQUENCE = """\
The old replicas keep serving while the new ones migrate, so each release may only expand the schema. To drop,
rename or tighten a column, spread it over releases, each deployed everywhere before the next:
  1. expand: add the new column (nullable, or with db_default); the old column stays;
  2. backfill: copy what the new column needs (a data migration, or a command);
  3. switch the code to the new column, and stop reading the old one: remove the field from the model only,
     with migrations.SeparateDatabaseAndState(state_operations=[...]) so that no SQL runs;
  4. contract, in a later release: drop the old column, in a migration that says which release stopped using it
     (class Migration: accept_backward_incompatible = "release ... stopped reading ..."), which this check then
     lets through."""
# The environment a database URL may take its password from (servicekit.settings), left out of the SQLite pass.
PASSWORD_VARIABLES = ("DATABASE_PASSWORD", "DATABASE_PASSWORD_FILE")


def checked_apps() -> set[str]:
    """The apps whose migrations this service ships: those in its folder, and servicekit's."""
    return app_labels_in(Path(settings.BASE_DIR), Path(apps.get_app_config("servicekit").path))


def step_through(checked: set[str]) -> tuple[list[str], list[str]]:
    """Applies every migration, in order, to the (empty, scratch) database of the connection; what the checked
    apps' migrations break, refused and accepted, a line each."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    state = ProjectState(real_apps=executor.loader.unmigrated_apps)
    refused, accepted = [], []
    before: Schema | None = None  # the schema now, when read since the last change
    for migration, _backwards in plan:
        ours = migration.app_label in checked
        schema_before = (before if before is not None else snapshot(connection)) if ours else None
        try:
            state = executor.apply_migration(state, migration)
        except DatabaseError as error:  # it would fail the same way in the deploy, on its first new replica
            refused.append(f"{migration.app_label}.{migration.name}: fails on the schema before it: {error}")
            break
        if schema_before is None:
            before = None  # another app's migration changed the schema: read it again before the next of ours
            continue
        before = snapshot(connection)
        changes = breaking_changes(schema_before, before)
        reason = getattr(migration, "accept_backward_incompatible", None)
        for change in changes:
            if reason:
                accepted.append(f"{migration.app_label}.{migration.name}: {change}; accepted: {reason}")
            else:
                refused.append(f"{migration.app_label}.{migration.name}: {change}")
    return refused, accepted


class Command(BaseCommand):
    help = "Refuses a migration the running release cannot run against, by its effect on a scratch database."

    def add_arguments(self, parser) -> None:
        # The passes, each a process of its own (one database configuration per process): the parent's options.
        parser.add_argument("--scratch", choices=["sqlite-file", "server"], help="internal: one pass")

    def handle(self, *args, scratch: str | None = None, **options) -> None:
        if scratch is not None:
            raise SystemExit(self.one_pass(scratch))
        passes = [("sqlite", self.sqlite_pass)]
        if connection.vendor != "sqlite":
            passes.append((connection.vendor, lambda: self.child({}, "server")))
        worst = 0
        for vendor, run_pass in passes:
            status = run_pass()
            if status == 0:
                self.stdout.write(f"check_migrations: {settings.SERVICE_NAME} (on {vendor}): every migration is one "
                                  f"the running release can run against, or says why not")  # fmt: skip
            worst = max(worst, status)
        if worst:
            raise SystemExit(worst)

    def sqlite_pass(self) -> int:
        with tempfile.TemporaryDirectory(prefix="check-migrations-") as folder:
            return self.child({"DATABASE_URL": f"sqlite:///{folder}/scratch.sqlite3"}, "sqlite-file")

    def child(self, environment: dict[str, str], scratch: str) -> int:
        child_environment = {**os.environ, **environment}
        if scratch == "sqlite-file":
            for name in PASSWORD_VARIABLES:
                child_environment.pop(name, None)
        command = [sys.executable, "-m", "django", "check_migrations", "--scratch", scratch]
        return subprocess.run(command, env=child_environment, check=False).returncode  # nosec B603

    def one_pass(self, scratch: str) -> int:
        original = connection.settings_dict["NAME"]
        if scratch == "sqlite-file":
            if connection.vendor != "sqlite" or Path(original).exists():
                self.stderr.write(f"check_migrations: not a new SQLite file: {original}")
                return 2
            return self.report(*step_through(checked_apps()))
        name = f"{original}_check_{secrets.token_hex(4)}"
        quoted = connection.ops.quote_name(name)
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {quoted}")
        connection.settings_dict["NAME"] = name
        try:
            return self.report(*step_through(checked_apps()))
        finally:
            connection.close()
            connection.settings_dict["NAME"] = original
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")

    def report(self, refused: list[str], accepted: list[str]) -> int:
        where = f"{settings.SERVICE_NAME} (on {connection.vendor})"
        for line in accepted:
            self.stdout.write(f"check_migrations: {where}: {line}")
        if not refused:
            return 0
        found = "\n".join(f"  {line}" for line in refused)
        self.stderr.write(f"check_migrations: {where} has a migration the running release cannot run against:\n"
                          f"{found}\n\n{SAFE_SEQUENCE}")  # fmt: skip
        return 1
