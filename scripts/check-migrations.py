"""Every service's migrations checked as a deploy checks them, here in the development environment on SQLite
(`make lint`): `check-migrations.py [SERVICE ...]`, every service by default.

The check is servicekit's `django-admin check_migrations` (servicekit/servicekit/management/commands): it applies
each migration to a scratch database and refuses one whose schema the release before it cannot run against
(docs/adr/0006). `make deploy` runs it in the service's new image, on the stack's own database engine as well.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = sorted(path.parent.parent.name for path in ROOT.glob("*/config/settings.py"))
# What would point the check at a database server: make lint checks on SQLite only.
SERVER_VARIABLES = ("DATABASE_URL", "DATABASE_PASSWORD", "DATABASE_PASSWORD_FILE")


def check(folder: Path) -> int:
    """One service's check, in its folder: a Django project per process."""
    with tempfile.TemporaryDirectory(prefix="check-migrations-") as data_dir:
        environment = {name: value for name, value in os.environ.items() if name not in SERVER_VARIABLES}
        environment.update(DJANGO_SETTINGS_MODULE="config.settings", DATA_DIR=data_dir)
        command = [sys.executable, "-m", "django", "check_migrations"]
        return subprocess.run(command, cwd=folder, env=environment, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=f"default: all ({', '.join(SERVICES)})")
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose services to check (default: this)")
    arguments = parser.parse_args()
    worst = 0
    for service in arguments.services or SERVICES:
        folder = (arguments.root / service).resolve()
        if not (folder / "config" / "settings.py").is_file():
            print(f"check-migrations: {service} is not a service of {arguments.root}", file=sys.stderr)
            return 2
        worst = max(worst, check(folder))
    return worst


if __name__ == "__main__":
    sys.exit(main())
