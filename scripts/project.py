"""The stack as its tools see it (make scale, load, deploy, backup, swarm-*, cluster-*), and the test harness and the
measurement tools too: its services and their roles, `docker compose` run for a project with its containers found
by their labels (ComposeProject), the gateway's upstream file as nginx last loaded it (routed_replicas), a client
that retries as browsers do, and the one error shape of a tool (ToolError, tool_main).
"""

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import docker
import requests
from docker.models.containers import Container
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

import engine

ROOT = Path(__file__).resolve().parent.parent
# A service is a folder holding a Django project; the folder's name is the service's name.
SERVICES = sorted(path.parent.parent.name for path in ROOT.glob("*/config/settings.py"))
GATEWAY = "nginx"
# The status page's container (status/).
STATUS = "status"
# Prometheus's container, in the metrics profile (prometheus/), and the profile's name.
PROMETHEUS, METRICS_PROFILE = "prometheus", "metrics"
# The roles of the services, as the suite drives them.
ACCOUNTS, CATALOG, ORDERS, NOTIFICATIONS = "service1", "service2", "service3", "service4"


# The gateway's interface to the tools (docs/adr/0002): the upstreams nginx last loaded with success, one per
# service, each listing its replicas as `server "<address>" max_fails=0;` (`... down;` when it has none).
GATEWAY_UPSTREAMS = "/tmp/nginx/generated/upstreams.applied"
# Quotes optional: a gateway from before they were written (its file is read while `make deploy` replaces it).
UPSTREAM_BLOCK = re.compile(r'^upstream "?(?P<service>[^"\s]+)"? \{\n(?P<servers>.*?)^\}', re.MULTILINE | re.DOTALL)
ROUTED_SERVER = re.compile(r'^\s*server "?(?P<address>[^"\s]+)"? max_fails=0;$', re.MULTILINE)

# How late the gateway's access lines may reach its log: nginx.conf writes them in batches (access_log ... flush=).
ACCESS_LOG_FLUSH = re.compile(r"^\s*access_log /dev/stdout .*\bflush=(?P<seconds>\d+)s\b", re.MULTILINE)


def gateway_log_delay_seconds() -> float:
    """At most how long after a request the gateway's access line for it is in the container's log (0: at once)."""
    match = ACCESS_LOG_FLUSH.search((ROOT / "nginx" / "nginx.conf").read_text())
    return float(match["seconds"]) if match else 0.0


START_INTERVAL_FILE = "docker-compose.start-interval.yml"
# A duration as Compose writes it (Go's): "30s", "1m30s", "1h0m0s".
COMPOSE_DURATION = re.compile(r"(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m)?(?:(?P<seconds>[\d.]+)s)?")


def compose_seconds(duration: str) -> float:
    """Seconds in a duration as `docker compose config` writes it."""
    parts = COMPOSE_DURATION.fullmatch(duration)
    if not duration or parts is None:
        raise ToolError(f"not a duration: {duration!r}")
    return sum(float(parts[unit] or 0) * factor for unit, factor in (("hours", 3600), ("minutes", 60), ("seconds", 1)))


def intervals_at_rest() -> dict[str, float]:
    """Each container's healthcheck interval in seconds once it has started, as START_INTERVAL_FILE sets it for
    engines with start_interval (by Compose's service name): what the bench and make sizes give an older engine,
    to measure what a newer one does."""
    merged = run(
        "docker", "compose", "-f", "docker-compose.yml", "-f", START_INTERVAL_FILE, "config", "--format", "json"
    )
    return {
        name: compose_seconds(service["healthcheck"]["interval"])
        for name, service in json.loads(merged.stdout)["services"].items()
        if "start_interval" in service.get("healthcheck", {})
    }


def write_health_intervals(path: Path, seconds: dict[str, float]) -> None:
    """Writes a Compose override file to path that sets the healthcheck interval of each service named (seconds):
    how the bench and make sizes have an engine without start_interval check as one with it would."""
    checks = {name: {"healthcheck": {"interval": f"{interval:g}s"}} for name, interval in seconds.items()}
    path.write_text(json.dumps({"services": checks}))


# The engine's RFC 3339 times (healthchecks, log timestamps): a fraction of up to nine digits with its trailing
# zeros dropped (Python reads up to six), then Z or an offset.
ENGINE_TIME = re.compile(r"(?P<seconds>[^.Z+]+)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)")


def engine_time(stamp: str) -> datetime:
    """One of the engine's times, time zone aware."""
    match = ENGINE_TIME.fullmatch(stamp)
    if match is None:
        raise ToolError(f"not a time the engine writes: {stamp!r}")
    fraction, zone = (match["fraction"] or "")[:6].ljust(6, "0"), match["zone"].replace("Z", "+00:00")
    return datetime.fromisoformat(f"{match['seconds']}.{fraction}{zone}")


def environment_of(container: Container) -> dict[str, str]:
    """The environment a container runs with."""
    return dict(variable.split("=", 1) for variable in container.attrs["Config"]["Env"])


def routed_replicas(upstreams: str) -> dict[str, list[str]]:
    """Per service, the addresses (unix:<socket> or ip:port) of the replicas the gateway routes to."""
    return {block["service"]: ROUTED_SERVER.findall(block["servers"]) for block in UPSTREAM_BLOCK.finditer(upstreams)}


def positive(text: str) -> int:
    """argparse's type for a count of replicas, processes or threads."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


class ToolError(Exception):
    """What went wrong, for the user of a tool: it prints `<tool>: FAILED: <this>` and exits 1."""


def tool_main(tool: str, work: Callable[[], None]) -> int:
    """Runs a tool's work; its exit status: 0, or 1 with the ToolError said on stderr."""
    try:
        work()
    except ToolError as error:
        print(f"{tool}: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


def run(
    *command: str,
    environment: dict[str, str] | None = None,
    timeout: float | None = None,
    stdin: str | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess:
    """Runs a command (in the repository, unless cwd says); a failure is a ToolError that says what it printed."""
    result = subprocess.run(
        command, cwd=cwd, env=environment, input=stdin, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise ToolError(f"`{' '.join(command)}` failed:\n{(result.stderr or result.stdout).strip()}")
    return result


def check_migrations(
    command: list[str], tool: str, environment: dict[str, str] | None = None, cwd: Path = ROOT
) -> None:
    """servicekit's `django-admin check_migrations`, as command runs it: in the release's own image, so nothing
    but that image is needed. What it let through, and why, is said; a refusal is a ToolError with what it said,
    the safe sequence included."""
    print(f"{tool}: checking the migrations against the release that runs", flush=True)
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)
    for line in result.stdout.splitlines():
        print(f"{tool}: {line}", flush=True)
    if result.returncode != 0:
        raise ToolError(result.stderr.strip() or f"`{' '.join(command)}` failed with status {result.returncode}")


def check_migrations_in_image(image: str, tool: str) -> None:
    """check_migrations in an image alone, on SQLite (a Swarm service's database is on the swarm's network)."""
    command = ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--env", "DATA_DIR=/tmp", "--network",
               "none", "--entrypoint", "django-admin", image, "check_migrations"]  # fmt: skip
    check_migrations(command, tool)


def compose_project_name() -> str:
    """The project name Compose itself would use here: COMPOSE_PROJECT_NAME, .env, or the file's `name:`."""
    return json.loads(run("docker", "compose", "config", "--format", "json").stdout)["name"]


class ComposeProject:
    """A Compose project of this stack: `docker compose` run for it, its containers by their labels, its images."""

    def __init__(self, project: str, environment: dict[str, str] | None = None, root: Path = ROOT):
        self.project = project
        self.environment = environment or {}
        self.root = root  # the tree whose Compose files these are (a copy of this one, in a test)
        self.docker = docker.from_env()

    def compose_environment(self) -> dict[str, str]:
        return {**os.environ, **self.environment}

    def compose(self, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "--project-name", self.project, *arguments]
        return run(*command, environment=self.compose_environment(), timeout=timeout, cwd=self.root)

    def take_down(self, *options: str, volumes: bool = False, timeout: float = 300) -> list[str]:
        """`docker compose down --remove-orphans` (and its options), then whatever still carries the project's
        label, made by another variant's Compose files (PostgreSQL's networks, the bench's rows) or, with
        volumes, any volume of the project. Returns the networks the engine would not remove (engine.py)."""
        try:
            endpoints = [container.name for container in self.containers(all=True)]
        except docker.errors.NotFound:  # one was removed between the list and its inspection: list again
            endpoints = [container.name for container in self.containers(all=True)]
        down = ["down", "--remove-orphans", *(["--volumes"] if volumes else []), *options]
        try:
            engine.patiently(lambda: self.compose(*down, timeout=timeout))
        except ToolError as error:
            if not engine.STALE_ENDPOINT.search(str(error)):
                raise
        label = f"com.docker.compose.project={self.project}"
        return engine.remove_leftovers(self.docker, label, volumes=volumes, endpoints=endpoints)

    def containers(self, service: str | None = None, *, all: bool = False) -> list[Container]:
        labels = [f"com.docker.compose.project={self.project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        return self.docker.containers.list(all=all, filters={"label": labels})

    def container(self, service: str) -> Container:
        (only,) = self.containers(service)
        return only

    def gateway_errors(self, since: float) -> list[str]:
        """The gateway's log lines at error or above since a time (time.time()): a scale or deploy logs none."""
        lines = self.container(GATEWAY).logs(since=since, stdout=True, stderr=True).decode().splitlines()
        return [line for line in lines if '"level":"ERROR"' in line or '"level":"CRITICAL"' in line]

    def check_migrations(self, service: str, tool: str, *mounts: str) -> None:
        """check_migrations in the service's image as Compose runs the service, a replica that serves nothing:
        on SQLite, and on its database server when it has one (a scratch database there). A mount (host:path)
        puts a file into it: a migration, in a test."""
        command = ["docker", "compose", "--project-name", self.project, "run", "--rm", "--no-deps", "--no-TTY",
                   *(f"--volume={mount}:ro" for mount in mounts), "--entrypoint", "django-admin", service,
                   "check_migrations"]  # fmt: skip
        check_migrations(command, tool, self.compose_environment(), self.root)

    def image_of(self, service: str) -> str:
        """The image Compose builds for a service of this project (the Compose file names none of its own)."""
        return f"{self.project}-{service}"

    def own_image_names(self, project: str | None = None) -> list[str]:
        """The names of the images Compose built, or a test stack took, for a project (this one's by default)."""
        prefix = f"{project or self.project}-"
        images = self.docker.images.list(filters={"reference": f"{prefix}*"})
        return [tag.rsplit(":", 1)[0] for image in images for tag in image.tags if tag.startswith(prefix)]

    def remove_own_image_names(self) -> None:
        """Removes this project's image names. Compose's `down --rmi local` finds images by their build's project
        label, which an image taken from the builder's cache, or by another stack, carries from another project."""
        for name in self.own_image_names():
            self.docker.images.remove(name)


def retrying_session() -> requests.Session:
    """A client that does as browsers do, and as HTTP allows for idempotent requests: a keep-alive connection the
    server closed just as the request went out (nginx's old workers close their idle ones on every graceful
    reload) is retried once on a new connection; so is one that gave no answer within its timeout. A refused
    connection or any error status is not retried."""
    session = requests.Session()
    # A 503's Retry-After is the client's to honour, not urllib3's: it would retry, then raise instead of answering.
    retry = Retry(total=1, connect=0, read=1, status=0, other=0, respect_retry_after_header=False)
    retry_once = HTTPAdapter(max_retries=retry)
    session.mount("http://", retry_once)
    session.mount("https://", retry_once)
    return session
