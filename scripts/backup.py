"""Backs up and restores each service's database, on SQLite and on PostgreSQL (`make backup [SERVICE=service3]`,
`make restore FROM=backups/<time> [SERVICE=service3]`).

backup takes a consistent copy of each service's database while it serves: SQLite's online backup API in the
service's own container (`django-admin backup_database`: the database as of one moment, never a torn file), or
pg_dump in the service's PostgreSQL container (one snapshot). Into backups/<UTC time>/ go serviceN.sqlite3 or
serviceN.pgdump, and serviceN.json: the service, its database, the migrations applied to it, the image it ran.

restore puts a copy back into a stopped service and brings it back: it checks first, with nothing stopped, that
the running release knows every migration the copy has (a copy taken by a newer release is refused); then it
stops the service, puts the file into its data volume (SQLite) or pg_restores it into its database (PostgreSQL),
and starts it, and its entrypoint migrates a copy older than the code forward. Each service owns its data, so a
restored service is as of its copy while the others are as of now: reconcile (`make reconcile [RELEASE=1]`)
compares the catalog's reservations with the orders, and releases those no order holds.
"""

import argparse
import io
import json
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from docker.models.containers import Container

import engine
from project import CATALOG, ORDERS, ROOT, SERVICES, ComposeProject, ToolError, compose_project_name, tool_main

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


def environment_of(container: Container) -> dict[str, str]:
    return dict(variable.split("=", 1) for variable in container.attrs["Config"]["Env"])


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
        into.mkdir(parents=True, exist_ok=False)
        for service in services:
            started = time.monotonic()
            replica = self.replica(service)
            state = self.state(replica)
            if state["vendor"] == "sqlite":
                copy = into / f"{service}.sqlite3"
                copy.write_bytes(self.sqlite_copy(replica))
            else:
                copy = into / f"{service}.pgdump"
                with copy.open("wb") as dump:
                    database = self.container(f"{service}-db")
                    subprocess.run(["docker", "exec", database.id, "sh", "-c", PG_DUMP], stdout=dump, check=True)
            about = {
                "service": service,
                "database": state["vendor"],
                "file": copy.name,
                "migrations": state["applied"],
                "image": replica.attrs["Image"],
                "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            (into / f"{service}.json").write_text(json.dumps(about, indent=2) + "\n")
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

    def restore(self, source: Path, services: list[str]) -> None:
        abouts = {}
        for service in services:  # every check before anything stops
            path = source / f"{service}.json"
            if not path.is_file():
                raise ToolError(f"{source} has no copy of {service} ({path.name})")
            about = json.loads(path.read_text())
            state = self.state(self.replica(service))
            if about["database"] != state["vendor"]:
                raise ToolError(f"{service}: the copy is of {about['database']}, the service runs {state['vendor']}")
            newer = [f"{app}.{name}" for app, names in about["migrations"].items() for name in names
                     if name not in state["known"].get(app, [])]  # fmt: skip
            if newer:
                raise ToolError(
                    f"{service}: the copy was taken by a newer release; these migrations of it are not in the one "
                    f"that runs: {', '.join(newer)}. Deploy that release first. Nothing was changed."
                )
            abouts[service] = about
        for service, about in abouts.items():
            started = time.monotonic()
            replica = self.replica(service)
            self.compose("stop", service)
            if about["database"] == "sqlite":
                self.put_sqlite(replica, (source / about["file"]).read_bytes())
            else:
                with (source / about["file"]).open("rb") as dump:
                    database = self.container(f"{service}-db")
                    command = ["docker", "exec", "-i", database.id, "sh", "-c", PG_RESTORE]
                    result = subprocess.run(command, stdin=dump, capture_output=True, text=True)
                    if result.returncode != 0:
                        raise ToolError(f"{service}: pg_restore failed (nothing restored): {result.stderr.strip()}")
            # Its entrypoint migrates a copy older than the code forward before it serves.
            self.compose("up", "--detach", "--wait", "--no-deps", "--no-recreate", service, timeout=300)
            took = time.monotonic() - started
            say(f"{service}: restored from {source / about['file']} and serving again; took {took:.1f} s")

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
