"""Backs up and restores each service's database, on SQLite and on PostgreSQL (`make backup [SERVICE=service3]`,
`make restore FROM=backups/<time> [SERVICE=service3]`).

backup takes a consistent copy of each service's database while it serves: SQLite's online backup API in the
service's own container (`django-admin backup_database`: the database as of one moment, never a torn file), or
pg_dump in the service's PostgreSQL container (one snapshot). Into backups/<UTC time>/ go serviceN.sqlite3 or
serviceN.pgdump, and serviceN.json: the service, its database, the migrations applied to it, the image it ran,
and the copy's SHA-256. A copy holds what the service keeps (accounts': password hashes, token digests, the
lockout log), so the folder is its owner's alone (0700, its files 0600).

restore puts a copy back into a stopped service and brings it back. It checks first, with nothing stopped, that
the copy is the one this backup made for this service: the file is serviceN.sqlite3 or serviceN.pgdump of the
backup's own folder, never a link (no path is taken from the metadata); its SHA-256 is the one recorded; the
metadata names this service; the copy's own django_migrations hold the service's own apps and no app it does not
know (another service's database is refused); and the running release knows every migration the copy has (a
copy taken by a newer release is refused). Then it
stops the service, puts the file into its data volume (SQLite) or pg_restores it into its database (PostgreSQL),
and starts it, and its entrypoint migrates a copy older than the code forward. Each service owns its data, so a
restored service is as of its copy while the others are as of now: reconcile (`make reconcile [RELEASE=1]`)
compares the catalog's reservations with the orders, and releases those no order holds.
"""

import argparse
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from docker.models.containers import Container

import engine
from project import (
    CATALOG,
    ORDERS,
    ROOT,
    SERVICES,
    ComposeProject,
    ToolError,
    compose_project_name,
    environment_of,
    tool_main,
)

BACKUPS = ROOT / "backups"
SQLITE_FILE = "db.sqlite3"
PG_DUMP = 'pg_dump --format=custom --username "$POSTGRES_USER" --dbname "$POSTGRES_DB"'
# --clean --if-exists: the copy replaces what is there; one transaction: all of it or, on an error, none.
PG_RESTORE = (
    'pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error --username "$POSTGRES_USER" '
    '--dbname "$POSTGRES_DB"'
)


def say(message: str) -> None:
    print(f"backup: {message}", flush=True)


# What a copy's file is called in its backup's folder, by the database it is of.
COPY_SUFFIXES = {"sqlite": "sqlite3", "postgresql": "pgdump"}
# Written only by their owner, read by nobody else: a copy holds password hashes.
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600


def private_file(path: Path):
    """A new file only its owner can read, never one that exists already or a link: a binary file object."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    return os.fdopen(descriptor, "wb")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as copy:
        for block in iter(lambda: copy.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_in(source: Path, service: str, vendor: str) -> Path:
    """The copy of service in the backup's folder source: its own name there, a regular file, not a link."""
    copy = source / f"{service}.{COPY_SUFFIXES[vendor]}"
    if copy.is_symlink() or not copy.is_file() or copy.resolve().parent != source.resolve():
        raise ToolError(f"{service}: {copy} is not a file of the backup's own folder. Nothing was changed.")
    return copy


def sqlite_apps(copy: Path) -> set[str]:
    """The apps a SQLite copy's django_migrations name, read without writing to it and trusting nothing in it."""
    try:
        with sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro&immutable=1", uri=True) as database:
            database.execute("PRAGMA trusted_schema = OFF")
            return {app for (app,) in database.execute("SELECT DISTINCT app FROM django_migrations")}
    except sqlite3.Error as error:
        raise ToolError(f"{copy} is not a service's SQLite database ({error}). Nothing was changed.") from None


class Databases(ComposeProject):
    """The services' databases of a running Compose project of the stack."""

    def replica(self, service: str) -> Container:
        replicas = self.containers(service)
        if not replicas:
            raise ToolError(f"{service} has no running replica in project {self.project}: start it first")
        return replicas[0]

    def run_in(self, container: Container, *command: str) -> str:
        """What the command printed on its standard output; its error output, if it fails."""
        result = container.exec_run(list(command), demux=True)
        out, err = (part.decode() if part else "" for part in result.output)
        if result.exit_code != 0:
            raise ToolError(f"{' '.join(command)} in {container.name}: {(err or out).strip()}")
        return out

    def state(self, container: Container) -> dict:
        """The database's vendor, the migrations applied to it, and those the container's release knows."""
        return json.loads(self.run_in(container, "django-admin", "migration_state"))

    def reconcile(self, release: bool) -> None:
        """The saga's invariant across the catalog and orders, after one of them was restored alone: each
        reservation the catalog holds belongs to an order, and each placed order holds a reservation."""
        held = json.loads(self.run_in(self.replica(CATALOG), "django-admin", "stock_report"))["held"]
        orders = json.loads(self.run_in(self.replica(ORDERS), "django-admin", "order_report"))["orders"]
        orphans = sorted(rid for rid in held if rid not in orders)
        unreserved = sorted(oid for oid, order in orders.items() if order["status"] == "placed" and oid not in held)
        say(f"{len(orphans)} reservation(s) the catalog holds for no order: {', '.join(orphans) or 'none'}")
        if orphans and release:
            self.run_in(self.replica(CATALOG), "django-admin", "release_reservation", *orphans)
            say(f"released them: their stock is back ({CATALOG})")
        elif orphans:
            say("run again with --release (make reconcile RELEASE=1) to give their stock back")
        listed = ", ".join(unreserved) or "none"
        say(f"{len(unreserved)} placed order(s) the catalog holds no reservation for: {listed}")
        if unreserved:
            say("their stock was never taken in the catalog as restored: cancel them, or take it by hand")

    def backup(self, services: list[str], into: Path) -> None:
        into.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        into.mkdir(mode=PRIVATE_FOLDER)
        into.chmod(PRIVATE_FOLDER)  # whatever the umask
        for service in services:
            started = time.monotonic()
            replica = self.replica(service)
            state = self.state(replica)
            copy = into / f"{service}.{COPY_SUFFIXES[state['vendor']]}"
            with private_file(copy) as written:
                if state["vendor"] == "sqlite":
                    written.write(self.sqlite_copy(replica))
                else:
                    database = self.container(f"{service}-db")
                    subprocess.run(["docker", "exec", database.id, "sh", "-c", PG_DUMP], stdout=written, check=True)
            about = {
                "service": service,
                "database": state["vendor"],
                "file": copy.name,
                "sha256": sha256_of(copy),
                "migrations": state["applied"],
                "image": replica.attrs["Image"],
                "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            with private_file(into / f"{service}.json") as written:
                written.write((json.dumps(about, indent=2) + "\n").encode())
            took = time.monotonic() - started
            say(f"{service} ({state['vendor']}): {copy} ({copy.stat().st_size:,} bytes) in {took:.1f} s")

    def sqlite_copy(self, replica: Container) -> bytes:
        """The copy backup_database writes beside the database, fetched and then removed from the volume."""
        path = f"{environment_of(replica)['DATA_DIR']}/.backup.sqlite3"
        self.run_in(replica, "django-admin", "backup_database", path)
        try:
            stream, _ = replica.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                member = archive.extractfile(archive.getmembers()[0])
                assert member is not None  # a file, not a folder
                return member.read()
        finally:
            self.run_in(replica, "rm", "-f", path)

    def checked_copy(self, source: Path, service: str) -> Path:
        """The copy of service in the backup's folder source, once it is shown to be this service's, whole, and
        one the running release can run; a ToolError saying why not, with nothing changed."""
        about_path = source / f"{service}.json"
        if about_path.is_symlink() or not about_path.is_file():
            raise ToolError(f"{source} has no copy of {service} ({about_path.name})")
        about = json.loads(about_path.read_text())
        state = self.state(self.replica(service))
        refused = f"{service}: not restored, nothing was changed:"
        if about.get("service") != service:
            raise ToolError(f"{refused} the copy's metadata names {about.get('service')!r}, not {service}")
        if about.get("database") != state["vendor"]:
            raise ToolError(f"{refused} the copy is of {about.get('database')}, the service runs {state['vendor']}")
        copy = copy_in(source, service, state["vendor"])
        if about.get("file", copy.name) != copy.name:
            raise ToolError(f"{refused} its metadata names another file ({about['file']!r}) than {copy.name}")
        if about.get("sha256") != sha256_of(copy):
            raise ToolError(f"{refused} {copy.name} is not the file the backup wrote (its SHA-256 differs)")
        apps = sqlite_apps(copy) if state["vendor"] == "sqlite" else self.pgdump_apps(service, copy)
        foreign, missing = apps - set(state["known"]), set(state["own_apps"]) - apps
        if foreign or missing:
            raise ToolError(
                f"{refused} {copy.name} is not {service}'s database: it holds the apps {', '.join(sorted(apps))}"
                f" ({service}'s own: {', '.join(state['own_apps'])})"
            )
        newer = [f"{app}.{name}" for app, names in about["migrations"].items() for name in names
                 if name not in state["known"].get(app, [])]  # fmt: skip
        if newer:
            raise ToolError(
                f"{service}: the copy was taken by a newer release; these migrations of it are not in the one "
                f"that runs: {', '.join(newer)}. Deploy that release first. Nothing was changed."
            )
        return copy

    def pgdump_apps(self, service: str, copy: Path) -> set[str]:
        """The apps a pg_dump copy's django_migrations name: the table's rows, read by pg_restore into a script
        (nothing is restored), in the service's own database container."""
        database = self.container(f"{service}-db")
        command = ["docker", "exec", "-i", database.id, "pg_restore", "--data-only", "--table=django_migrations",
                   "--file=-"]  # fmt: skip
        with copy.open("rb") as dump:
            listed = subprocess.run(command, stdin=dump, capture_output=True, text=True)
        if listed.returncode != 0:
            raise ToolError(f"{copy} is not a pg_dump of a service's database: {listed.stderr.strip()}")
        rows = listed.stdout.partition("FROM stdin;\n")[2].partition("\n\\.")[0]
        return {row.split("\t")[1] for row in rows.splitlines() if row.count("\t") >= 2}

    def restore(self, source: Path, services: list[str]) -> None:
        copies = {service: self.checked_copy(source, service) for service in services}  # before anything stops
        for service, copy in copies.items():
            started = time.monotonic()
            replica = self.replica(service)
            self.compose("stop", service)
            if copy.suffix == ".sqlite3":
                self.put_sqlite(replica, copy.read_bytes())
            else:
                with copy.open("rb") as dump:
                    database = self.container(f"{service}-db")
                    command = ["docker", "exec", "-i", database.id, "sh", "-c", PG_RESTORE]
                    result = subprocess.run(command, stdin=dump, capture_output=True, text=True)
                    if result.returncode != 0:
                        raise ToolError(f"{service}: pg_restore failed (nothing restored): {result.stderr.strip()}")
            # Its entrypoint migrates a copy older than the code forward before it serves.
            self.compose("up", "--detach", "--wait", "--no-deps", "--no-recreate", service, timeout=300)
            took = time.monotonic() - started
            say(f"{service}: restored from {copy} and serving again; took {took:.1f} s")

    def put_sqlite(self, replica: Container, copy: bytes) -> None:
        """The copy in place of the database file of the (stopped) replica's data volume, in a throwaway container
        of its image: a write-ahead log of the database replaced must not be replayed onto the copy."""
        data_dir = environment_of(replica)["DATA_DIR"]
        (volume,) = [mount["Name"] for mount in replica.attrs["Mounts"] if mount["Destination"] == data_dir]
        user = replica.attrs["Config"]["User"] or "0"
        uid, _, gid = user.partition(":")
        swap = f'mv "$0/.restore.sqlite3" "$0/{SQLITE_FILE}" && rm -f "$0/{SQLITE_FILE}-wal" "$0/{SQLITE_FILE}-shm"'
        helper = self.docker.containers.create(
            replica.attrs["Image"], entrypoint=["sh", "-c", swap, data_dir], user=user, network_mode="none",
            volumes={volume: {"bind": data_dir, "mode": "rw"}},
        )  # fmt: skip
        try:
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w") as tar:
                entry = tarfile.TarInfo(".restore.sqlite3")
                entry.size, entry.mode, entry.uid, entry.gid = len(copy), 0o640, int(uid), int(gid or uid)
                tar.addfile(entry, io.BytesIO(copy))
            helper.put_archive(data_dir, archive.getvalue())
            helper.start()
            if helper.wait(timeout=60)["StatusCode"] != 0:
                raise ToolError(f"could not put the copy in place: {helper.logs().decode().strip()}")
        finally:
            engine.patiently(partial(helper.remove, force=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["backup", "restore", "reconcile"])
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=f"default: all ({', '.join(SERVICES)})")
    parser.add_argument("--from", dest="source", type=Path, help="restore: the backup's folder (backups/<time>)")
    parser.add_argument("--into", type=Path, help="backup: the folder to make (default: backups/<UTC time>)")
    parser.add_argument("--release", action="store_true", help="reconcile: release the reservations of no order")
    parser.add_argument("--project", help="the Compose project (default: Compose's own, so COMPOSE_PROJECT_NAME)")
    arguments = parser.parse_args()

    def run() -> None:
        unknown = [service for service in arguments.services if service not in SERVICES]
        if unknown:
            raise ToolError(f"unknown service {unknown[0]!r}: choose among {', '.join(SERVICES)}")
        services = arguments.services or SERVICES
        databases = Databases(arguments.project or compose_project_name())
        if arguments.action == "reconcile":
            databases.reconcile(arguments.release)
        elif arguments.action == "backup":
            into = arguments.into or BACKUPS / datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
            databases.backup(services, into)
            say(f"done: {into}")
        else:
            if arguments.source is None:
                raise ToolError("restore needs the backup's folder: make restore FROM=backups/<time>")
            present = [service for service in services if (arguments.source / f"{service}.json").is_file()]
            databases.restore(arguments.source, arguments.services or present)

    return tool_main("backup", run)


if __name__ == "__main__":
    sys.exit(main())
