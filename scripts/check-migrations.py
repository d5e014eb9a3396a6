"""Refuses a migration that the release before it cannot run against (`make lint`, and `make deploy` before it
builds anything): `check-migrations.py [SERVICE ...]`, every service by default.

During a deploy the new replicas migrate the database while the old ones still serve it (docs/adr/0006), so
every migration must expand the schema only: add a table, a nullable column, a column with a database default,
an index. django-migration-linter reads the SQL each migration runs and finds what would break the old code: a
dropped or renamed column or table, NOT NULL without a database default, a changed type. Each refusal names the
safe sequence (expand, backfill, switch the code, contract in a later release).

A migration the check refuses but that is safe says why, as an attribute of its Migration class, and is let
through: a contracting step of that sequence names the release that stopped using what it drops.

    class Migration(migrations.Migration):
        accept_backward_incompatible = "release 2026.12 stopped reading Product.updated_at"

It needs the development environment (make dev): Django and each service's settings, no database server.
"""

import argparse
import io
import os
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = sorted(path.parent.parent.name for path in ROOT.glob("*/config/settings.py"))

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


def lint_in_this_process(service_dir: Path) -> int:
    """Lints one service's migrations with its own settings (a service is a Django project: one per process)."""
    sys.path[:0] = [str(service_dir), str(ROOT / "servicekit")]
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp())  # nothing is written there: sqlmigrate reads no table
    import django
    from django.conf import settings

    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django_migration_linter"]
    settings.LOGGING_CONFIG = None  # the linter logs each migration it reads at INFO
    django.setup()
    from django.db.migrations.loader import MigrationLoader
    from django_migration_linter import MigrationLinter

    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = (service_dir, ROOT / "servicekit")  # the service's apps and the one every service shares
    local_apps = {app.label for app in django.apps.apps.get_app_configs() if Path(app.path).is_relative_to(ours[0])
                  or Path(app.path).is_relative_to(ours[1])}  # fmt: skip
    accepted = [name for (app, name), migration in loader.disk_migrations.items()
                if app in local_apps and getattr(migration, "accept_backward_incompatible", None)]  # fmt: skip
    linter = MigrationLinter(str(service_dir), include_apps=sorted(local_apps), ignore_name=accepted, no_cache=True,
                             quiet=["ok", "ignore"])  # fmt: skip
    found = io.StringIO()
    with redirect_stdout(found):
        linter.lint_all_migrations()
    if not linter.has_errors:
        return 0
    findings = "\n".join(line for line in found.getvalue().splitlines() if not line.startswith("***"))
    print(f"check-migrations: {service_dir.name} has a migration the running release cannot run against:\n"
          f"{findings}\n\n{SAFE_SEQUENCE}", file=sys.stderr)  # fmt: skip
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=f"default: all ({', '.join(SERVICES)})")
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose services to check (default: this)")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child: lint this service folder
    arguments = parser.parse_args()
    if arguments.one:
        return lint_in_this_process(arguments.one.resolve())
    failed = 0
    for service in arguments.services or SERVICES:
        folder = (arguments.root / service).resolve()
        if not (folder / "config" / "settings.py").is_file():
            print(f"check-migrations: {service} is not a service of {arguments.root}", file=sys.stderr)
            return 2
        failed |= subprocess.run([sys.executable, __file__, "--one", str(folder)], check=False).returncode
    return failed


if __name__ == "__main__":
    sys.exit(main())
