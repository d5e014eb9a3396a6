"""What `make up` sets up and checks before it builds or starts anything, so a stack never comes up half way.

Set-up (`--set-up` alone: `make test` runs that part too), where this machine lets it (root on Debian):
- a Docker engine with Compose v2 (scripts/ensure-docker.sh); elsewhere it says what to install, and stops;
- the base images, built from Debian packages (scripts/base-images.sh, which also finds a proxy that intercepts
  TLS) when no registry serves the official ones.

Checks:

- The gateway's host port is free (or already this project's gateway's): otherwise Compose would create every
  container and leave the gateway "Created".
- Every base image the Dockerfiles start from is on this engine, or can be pulled: otherwise the build fails
  with a registry lookup error that names no way out. Without a registry, `make base-images` builds them.
- Every service's worker settings (SERVICEn_PROCESSES, _THREADS, _CHEAPER, _REPLICAS) keep uWSGI's and Compose's
  rules: otherwise a replica restarts in a loop, and the reason stands only in its start-up banner.

A volume that holds nothing to keep (a socket volume: memory, made anew at each start) but was made with other
options than the Compose file's (before its size bound) is removed while no container uses it, so that `up`
makes it as the file says: Compose would use it as it is.

It also says, without refusing, when the engine forwards published ports through docker-proxy: every client on
the host then reaches the gateway from one address, and shares one client's limits. With --why-not-up (after
`docker compose up --wait` failed) it names each container that is not running healthy, and why, from its log.

Runs on the host's own Python (no venv, no Docker SDK): it is the first thing a newcomer runs.
"""

import configparser
import errno
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

BASE_IMAGE_ARGUMENTS = ("PYTHON_IMAGE", "NGINX_IMAGE", "POSTGRES_IMAGE", "PROMETHEUS_IMAGE")
SCRIPTS = Path(__file__).resolve().parent
# uWSGI's options in every service's image: the one place the workers' defaults are written.
SERVICES_UWSGI_INI = SCRIPTS.parent / "servicekit" / "servicekit" / "uwsgi.ini"
INSTALL_DOCKER = (
    "Install Docker Engine and its Compose plugin (https://docs.docker.com/engine/install/), start the engine, "
    "then run `make up` again. As root on Debian, `make up` installs them itself (scripts/ensure-docker.sh)."
)


@functools.cache  # one file, read once: every service, every caller
def worker_defaults() -> dict[str, int]:
    """A replica's worker processes and threads when its service's settings name none (SERVICEn_PROCESSES and
    SERVICEn_THREADS empty), as uWSGI reads them from the image's uwsgi.ini."""
    options = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=(";", "#"))
    options.read(SERVICES_UWSGI_INI)
    return {"PROCESSES": options.getint("uwsgi", "processes"), "THREADS": options.getint("uwsgi", "threads")}


def docker(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *arguments], capture_output=True, text=True)


def may_install() -> bool:
    """Whether this machine lets make install what it needs: root on Debian, as ensure-docker.sh does it."""
    return os.geteuid() == 0 and Path("/etc/debian_version").exists()


def engine_problem() -> str | None:
    """None once an engine answers and Compose v2 is there, installed and started here if they were not and
    may_install(); otherwise what is missing and how to bring it."""

    def ready() -> bool:
        return (
            bool(shutil.which("docker"))
            and docker("info").returncode == 0
            and docker("compose", "version").returncode == 0
        )

    if ready():
        return None
    if not may_install():
        return f"no Docker engine with Compose v2 answers here. {INSTALL_DOCKER}"
    print("up: no Docker engine with Compose v2 here: installing and starting Debian's (scripts/ensure-docker.sh)",
          file=sys.stderr, flush=True)  # fmt: skip
    if subprocess.run([str(SCRIPTS / "ensure-docker.sh")]).returncode != 0 or not ready():
        return "scripts/ensure-docker.sh could not set up the engine (what it said is above)."
    return None


def rendered_config(*options: str) -> dict:
    """The stack as Compose resolves it here (the Compose files, .env, the shell; options: other files or
    profiles): a ToolError-free exit on error."""
    rendered = subprocess.run(["docker", "compose", *options, "config", "--format", "json"], capture_output=True,
                              text=True)  # fmt: skip
    if rendered.returncode != 0:
        print(f"up: {rendered.stderr.strip()}", file=sys.stderr)
        sys.exit(1)
    return json.loads(rendered.stdout)


# What the tests' stacks are built from beyond `make up`'s: PostgreSQL, and Prometheus (the metrics profile).
EVERY_VARIANT = ("--file", "docker-compose.yml", "--file", "docker-compose.postgres.yml", "--profile", "metrics")


def set_up(*variant: str) -> tuple[dict, list[str]]:
    """The engine, and the base images where no registry serves them: the stack's config once they are there,
    and what is still missing of its base images (where this machine does not let make build them). variant:
    Compose options for a stack other than the one `up` starts (EVERY_VARIANT), whose base images are made too."""
    problem = engine_problem()
    if problem:
        print(f"up: {problem}", file=sys.stderr)
        sys.exit(1)
    config = rendered_config()
    missing = missing_base_images(rendered_config(*variant) if variant else config)
    if missing and all(is_official(image) for _, image, _ in missing) and may_install():
        # Only those missing: a first start on SQLite makes no PostgreSQL image.
        kinds = sorted({argument.removesuffix("_IMAGE").lower() for argument, _, _ in missing})
        print(f"up: no registry serves them: building the base images ({', '.join(kinds)}) from Debian packages "
              "instead (scripts/base-images.sh, a few minutes)", file=sys.stderr, flush=True)  # fmt: skip
        if subprocess.run([str(SCRIPTS / "base-images.sh"), *kinds], stdout=subprocess.DEVNULL).returncode != 0:
            print("up: the base images could not be built (what base-images.sh said is above)", file=sys.stderr)
            sys.exit(1)
        config = rendered_config()  # .env names them now
        missing = missing_base_images(rendered_config(*variant) if variant else config)
    return config, base_image_problems(missing)


def port_problem(config: dict) -> str | None:
    project = config["name"]
    for service, spec in config["services"].items():
        for port in spec.get("ports", []):
            address, published = port.get("host_ip") or "0.0.0.0", int(port["published"])  # noqa: S104 (as Compose)
            ours = docker(
                "ps",
                "--quiet",
                "--filter",
                f"label=com.docker.compose.project={project}",
                "--filter",
                f"label=com.docker.compose.service={service}",
                "--filter",
                f"publish={published}",
            ).stdout.strip()
            if ours:
                continue
            with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
                try:
                    probe.bind((address, published))
                except OSError as error:
                    if error.errno != errno.EADDRINUSE:
                        raise
                    return (
                        f"{address}:{published}, where the gateway would listen, is taken by another program. "
                        f"Stop it, or choose another port: GATEWAY_PORT={published + 1} in .env "
                        f"(or `GATEWAY_PORT={published + 1} make up`)."
                    )
    return None


def worker_setting_problems(config: dict, services: list[str] | None = None) -> list[str]:
    """Each service's workers as Compose resolved them (.env, the shell, the defaults), against the rules uWSGI
    and Compose would otherwise enforce only once a container starts. The variables are named SERVICEn_*."""
    problems = []
    for service, spec in sorted(config["services"].items()):
        environment = spec.get("environment") or {}
        if "UWSGI_PROCESSES" not in environment or (services is not None and service not in services):
            continue
        prefix = service.upper()
        defaults = worker_defaults()
        settings = {
            "PROCESSES": environment.get("UWSGI_PROCESSES") or defaults["PROCESSES"],  # empty: the image's default
            "THREADS": environment.get("UWSGI_THREADS") or defaults["THREADS"],
            "CHEAPER": environment.get("CHEAPER") or None,  # empty: uWSGI's adaptive workers are off
            "REPLICAS": (spec.get("deploy") or {}).get("replicas"),
        }
        numbers = {}
        for name, value in settings.items():
            if value is None:
                continue
            if not str(value).isdigit() or int(value) < 1:
                problems.append(f"{prefix}_{name}={value}: it must be a whole number, 1 or more.")
            else:
                numbers[name] = int(value)
        if "CHEAPER" in numbers and "PROCESSES" in numbers and numbers["CHEAPER"] >= numbers["PROCESSES"]:
            problems.append(
                f"{prefix}_CHEAPER={numbers['CHEAPER']}: it must be lower than {prefix}_PROCESSES="
                f"{numbers['PROCESSES']} (the workers kept when idle, fewer than the most uWSGI runs), or empty."
            )
    return problems


def missing_base_images(config: dict) -> list[tuple[str, str, str]]:
    """The base images the Dockerfiles start from that are neither on this engine nor pulled now: each as the
    build argument that names it, the image, and why."""
    images = sorted(
        {
            (name, value)
            for spec in config["services"].values()
            for name, value in ((spec.get("build") or {}).get("args") or {}).items()
            if name in BASE_IMAGE_ARGUMENTS
        }
    )
    missing = []
    for argument, image in images:
        if docker("image", "inspect", image).returncode == 0:
            continue
        print(f"up: pulling the base image {image}", file=sys.stderr)
        pulled = docker("pull", "--quiet", image)
        if pulled.returncode != 0:
            missing.append((argument, image, (pulled.stderr.strip().splitlines() or ["no reason given"])[-1]))
    return missing


def is_official(image: str) -> bool:
    """An official image of Docker Hub (python:…, nginx:…): the Dockerfiles' defaults, which base-images.sh
    stands in for. An image the user named (with its registry or organisation) it cannot."""
    return "/" not in image.partition(":")[0]


def base_image_problems(missing: list[tuple[str, str, str]]) -> list[str]:
    problems = [
        f"the base image {image} is not on this engine and cannot be pulled ({why})." for _, image, why in missing
    ]
    if problems:
        problems.append(
            "No registry here? `make base-images` builds the base images from Debian packages and names them "
            "in .env, for every later command (docs/operations.md: Building without a registry)."
        )
    return problems


def userland_proxy_note() -> str | None:
    """A note when this machine's engine runs docker-proxy for published ports (Docker's default), or None."""
    config = {}
    try:
        with open("/etc/docker/daemon.json") as file:
            config = json.load(file)
    except (OSError, ValueError):
        pass
    command_lines = []
    try:
        for pid in subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split():
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command_lines.append(file.read().replace(b"\0", b" ").decode())
    except OSError:
        return None  # no local engine to look at (DOCKER_HOST elsewhere, or no /proc): nothing to say
    if not command_lines:
        return None
    if config.get("userland-proxy") is False or any("--userland-proxy=false" in line for line in command_lines):
        return None
    return (
        'note: this engine forwards published ports through docker-proxy ("userland-proxy" is not false in '
        "/etc/docker/daemon.json), so the gateway sees every client, from this host or another, as one address: they "
        "share one client's rate and connection limits. docs/security.md says how to turn it off."
    )


def remake_stale_memory_volumes(config: dict) -> list[str]:
    """Removes each of the project's memory volumes (driver_opts type tmpfs) whose options are not the Compose
    file's, if no container uses it; what it did or could not do, in sentences."""
    said = []
    for volume in config.get("volumes", {}).values():
        wanted = volume.get("driver_opts") or {}
        if wanted.get("type") != "tmpfs":
            continue
        inspected = docker("volume", "inspect", volume["name"])
        if inspected.returncode != 0 or (json.loads(inspected.stdout)[0].get("Options") or {}) == wanted:
            continue  # not made yet, or made as the file says
        if docker("ps", "--all", "--quiet", "--filter", f"volume={volume['name']}").stdout.strip():
            said.append(f"{volume['name']} is not bounded as docker-compose.yml says: `make down`, then `make up`")
        elif docker("volume", "rm", volume["name"]).returncode == 0:
            said.append(f"{volume['name']} was made before its bound (it holds nothing to keep): made anew")
    return said


def message_of(line: str) -> tuple[str, str]:
    """The level and message of a log line: a JSON record's, or the line itself."""
    try:
        record = json.loads(line)
    except ValueError:
        return "", line
    if not isinstance(record, dict):
        return "", line
    return str(record.get("level", "")), str(record.get("message", line))


def why_not_up(project: str) -> list[str]:
    """Each container of the project that is not running healthy, with the last line of its log at ERROR or above
    (a failed step says why there: servicekit.loglines), else its last line."""
    found = []
    listed = docker("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={project}")
    for container in listed.stdout.split():
        state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
        health = (state.get("Health") or {}).get("Status")
        if state.get("Status") == "running" and health in (None, "healthy"):
            continue
        name = docker("inspect", "--format", "{{.Name}}", container).stdout.strip().lstrip("/")
        if state.get("Status") == "created":
            found.append(f"{name} did not start: it waits for the containers it depends on")
            continue
        logs = docker("logs", "--tail", "200", container)
        records = [message_of(line) for line in (logs.stdout + logs.stderr).splitlines() if line.strip()]
        errors = [message for level, message in records if level in ("ERROR", "CRITICAL")]
        last = errors[-1] if errors else records[-1][1] if records else "(no log line)"
        found.append(f"{name} is {health or state.get('Status')}: {last}")
    return found


def main() -> int:
    if sys.argv[1:] == ["--why-not-up"]:  # after `docker compose up --wait` failed: which container, and why
        for reason in why_not_up(rendered_config()["name"]):
            print(f"up: {reason}", file=sys.stderr)
        return 1
    test_set_up = sys.argv[1:] == ["--set-up"]  # make test: what its stacks need, not what `up` would start
    config, missing_base_images = set_up(*(EVERY_VARIANT if test_set_up else ()))
    if test_set_up:
        for problem in missing_base_images:
            print(f"test: {problem}", file=sys.stderr)
        return 1 if missing_base_images else 0
    problems = worker_setting_problems(config)
    if not problems:
        problems = [problem for problem in [port_problem(config)] if problem] + missing_base_images
    for problem in problems:
        print(f"up: {problem}", file=sys.stderr)
    if not problems:
        for said in remake_stale_memory_volumes(config):
            print(f"up: {said}", file=sys.stderr)
    note = userland_proxy_note()
    if note and not problems:
        print(f"up: {note}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
