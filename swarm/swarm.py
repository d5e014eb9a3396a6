"""Runs the stack on Docker Swarm: `make swarm-up`, `make swarm-down`, `make swarm-deploy SERVICE=service2`.

up: builds the images with Compose and tags each by its content, makes the secrets that are missing, turns the
engine into a single-node swarm when it is in none (and says so), labels this node for the gateway and each
database when no node carries those labels, deploys docker-stack.yml, and returns once every service runs
healthy and the gateway answers.
down: removes the stack, and leaves the swarm only if `up` made it.
deploy: builds one service's image (or takes --image) and rolls it, new tasks first; a new image that never
becomes healthy is rolled back by Swarm itself, and this says so and fails.
"""

import argparse
import copy
import os
import secrets
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import docker
import environ
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Run as a program, from this tree or a copy of it: the tools' shared module, scripts/project.py.
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / folder) for folder in ("scripts",)]

import engine
from project import (
    GATEWAY,
    METRICS_PROFILE,
    PROMETHEUS,
    ROOT,
    SERVICES,
    STATUS,
    ToolError,
    check_migrations_in_image,
    intervals_at_rest,
    run,
    tool_main,
)

STACK_FILE = ROOT / "swarm" / "docker-stack.yml"
# Prometheus, deployed with the stack where the metrics profile is on (make swarm-up METRICS=1), as on Compose.
METRICS_STACK_FILE = ROOT / "swarm" / "docker-stack.metrics.yml"
COMPOSE_FILES = ["--file", "docker-compose.yml", "--file", "docker-compose.postgres.yml"]
# What `up` builds: every service, the gateway, the status page, and one database image (service1's), which
# every database runs.
BUILT = (*SERVICES, GATEWAY, STATUS, f"{SERVICES[0]}-db")
# The node labels that pin the gateway and each database (its volume lives on one node).
PLACEMENT_LABELS = ["microstack.gateway", *(f"microstack.{service}-db" for service in SERVICES)]


# Engines from 25 (API 1.44) check a starting task every second and a running one at the interval make has Compose
# use (docker-compose.start-interval.yml: 30 s and up, each service its own, so that their checks do not fall
# together), a database every 30 s: up as soon as it serves, next to nothing at rest. No stack file can say
# start_interval (`docker stack deploy` refuses it), so `up` sets it on each service once the stack is healthy.
# Which engines have it, the Makefile asks the same script.
HAS_START_INTERVAL = ROOT / "scripts" / "engine-has-start-interval.sh"
DATABASE_CHECK_INTERVAL_NS, CHECK_START_INTERVAL_NS = 30 * 10**9, 10**9


class SwarmError(ToolError):
    """What went wrong on Swarm, for the user; the command exits 1 with it."""


def say(message: str) -> None:
    print(f"swarm: {message}", flush=True)


def output(*command: str, environment: dict[str, str] | None = None) -> str:
    """What a command printed (stripped); a ToolError when it fails."""
    return run(*command, environment=environment).stdout.strip()


class Swarm:
    def __init__(
        self,
        stack: str,
        state_dir: Path,
        port: int,
        *,
        engine: str | None = None,
        registry: str | None = None,
        gateway_host: str = "127.0.0.1",
    ):
        """engine: a manager's address (DOCKER_HOST) when the swarm is not this machine's engine; images are still
        built here. registry: where they are pushed for every node to pull, and deployed from by that name."""
        self.stack = stack
        self.engine = engine
        # The swarm's commands go to the manager; builds, tags and pushes stay with this machine's engine.
        self.engine_environment = {**os.environ, "DOCKER_HOST": engine} if engine else None
        self.registry = registry
        self.gateway_host = gateway_host
        self.state_dir = state_dir
        self.secrets_dir = state_dir / stack / "secrets"
        # Written when `up` made the swarm, so that `down` leaves only a swarm it made.
        self.made_marker = state_dir / "made-swarm"
        self.port = port
        # As Compose reads it (make sets it from METRICS=1; .env may set it too).
        self.metrics = METRICS_PROFILE in os.environ.get("COMPOSE_PROFILES", "").split(",")
        self.built = (*BUILT, PROMETHEUS) if self.metrics else BUILT
        self.stack_files = [STACK_FILE, *([METRICS_STACK_FILE] if self.metrics else [])]

    def docker(self, *arguments: str, environment: dict[str, str] | None = None) -> str:
        """A docker command to the swarm's manager: what it printed."""
        return output(
            "docker", *arguments, environment={**(self.engine_environment or os.environ), **(environment or {})}
        )

    # --- the engine -----------------------------------------------------------------------------------------

    def join_or_make(self) -> None:
        state = self.docker("info", "--format", "{{.Swarm.LocalNodeState}}")
        if state == "active":
            return
        if state != "inactive":
            raise SwarmError(f"this engine's swarm state is {state!r}; make it active or inactive first")
        if self.engine:
            raise SwarmError(f"the engine at {self.engine} is in no swarm: init one there, and join the other hosts")
        # The loopback address: a single-node swarm that no other machine can join by accident.
        self.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        self.made_marker.parent.mkdir(parents=True, exist_ok=True)
        self.made_marker.write_text(self.docker("info", "--format", "{{.Swarm.NodeID}}") + "\n")
        say("this engine was in no swarm: it is now a single-node swarm (`make swarm-down` leaves it)")

    def refuse_a_compose_namesake(self) -> None:
        """The stack's networks are named <stack>_<network>, as a Compose project's of the same name are."""
        label = f"label=com.docker.compose.project={self.stack}"
        held = self.docker("network", "ls", "--format", "{{.Name}}", "--filter", label).split()
        if held:
            raise SwarmError(
                f"the Compose project {self.stack} holds the names the stack needs ({', '.join(sorted(held))}): "
                "`make down` removes it, or give the stack another name (STACK_NAME)"
            )

    def leave_if_made(self) -> None:
        if not self.made_marker.exists():
            return
        if self.services_of_other_stacks():
            say("the swarm runs other stacks: left as it is")
            return
        self.docker("swarm", "leave", "--force")
        self.made_marker.unlink()
        say("left the single-node swarm that swarm-up made")

    def services_of_other_stacks(self) -> list[str]:
        names = self.docker("service", "ls", "--format", "{{.Name}}").split()
        return [name for name in names if not name.startswith(f"{self.stack}_")]

    def label_this_node(self) -> None:
        """Pins the gateway and each database to this node, unless some node already carries its label."""
        labelled = set()
        for node in self.docker("node", "ls", "--quiet").split():
            labels = self.docker("node", "inspect", "--format", "{{json .Spec.Labels}}", node)
            labelled |= {label for label in PLACEMENT_LABELS if f'"{label}"' in labels}
        missing = [label for label in PLACEMENT_LABELS if label not in labelled]
        if missing:
            node = self.docker("info", "--format", "{{.Swarm.NodeID}}")
            additions = [argument for label in missing for argument in ("--label-add", f"{label}=true")]
            self.docker("node", "update", *additions, node)
            say(f"labelled this node for {', '.join(missing)}")

    # --- what is deployed -----------------------------------------------------------------------------------

    def build(self, *services: str) -> dict[str, str]:
        """Builds with Compose; returns each image's tag, named by its content so a change is a new tag, and
        pushed to the registry (if one is named) under that name."""
        profiles = ["--profile", METRICS_PROFILE] if self.metrics else []
        build = ["docker", "compose", "--project-name", self.stack, *COMPOSE_FILES, *profiles, "build", "--quiet"]
        output(*build, *services)
        images = {service: self.tag(service) for service in services}
        if self.registry:
            for service, image in images.items():
                images[service] = pushed = f"{self.registry}/{image}"
                output("docker", "tag", image, pushed)
                output("docker", "push", "--quiet", pushed)
            say(f"pushed {len(images)} images to {self.registry}")
        return images

    def tag(self, service: str) -> str:
        built = f"{self.stack}-{service}"
        image_id = output("docker", "image", "inspect", "--format", "{{.Id}}", built)
        name = "postgres" if service.endswith("-db") else service
        tagged = f"{self.stack}/{name}:{image_id.removeprefix('sha256:')[:12]}"
        output("docker", "tag", built, tagged)
        return tagged

    def make_missing_secrets(self) -> None:
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for service in SERVICES:
            write_once(self.secrets_dir / f"{service}_secret_key", lambda: secrets.token_urlsafe(50))
            write_once(self.secrets_dir / f"{service}_db_password", lambda: secrets.token_hex(32))
            identity_key = write_once(self.secrets_dir / f"{service}_identity_key", new_private_key_pem)
            write_once(self.secrets_dir / f"{service}_identity_key.pub", lambda key=identity_key: public_pem_of(key))

    def deploy_environment(self, images: dict[str, str]) -> dict[str, str]:
        environment = {**os.environ, "SECRETS_DIR": str(self.secrets_dir), "GATEWAY_PORT": str(self.port)}
        for service, image in images.items():
            if service == GATEWAY:
                variable = "GATEWAY_IMAGE"
            elif service == PROMETHEUS:  # not PROMETHEUS_IMAGE: that one names the image it is built from
                variable = "PROMETHEUS_SWARM_IMAGE"
            elif service.endswith("-db"):
                variable = "DATABASE_IMAGE"
            else:
                variable = f"{service.upper()}_IMAGE"
            # An image the user named (one in a registry, for several hosts) is deployed instead of the local build.
            environment[variable] = environment.get(variable) or image
        return environment

    def up(self, timeout: float) -> None:
        started = time.monotonic()
        self.join_or_make()
        self.label_this_node()
        self.make_missing_secrets()
        say("building the images")
        images = self.build(*self.built)
        self.refuse_a_compose_namesake()
        say(f"deploying the stack {self.stack}")
        # A network of a stack removed just before may still be going: its name is then taken for a moment.
        files = [argument for file in self.stack_files for argument in ("--compose-file", str(file))]
        engine.patiently(lambda: self.docker(
            "stack", "deploy", *files, "--resolve-image", "never", "--prune", self.stack,
            environment=self.deploy_environment(images),
        ), already_so=None)  # fmt: skip
        self.wait_until_healthy(started + timeout)
        # The databases first, on their own: one restarted (stop-first) under its service's new task would fail
        # that task's health, and Swarm would roll the service's update back.
        for databases in (True, False):
            rolled = self.roll_checks_at_rest(databases, started + timeout)
            if rolled:
                say(f"{len(rolled)} services checked every 30 s or more once started, every second while starting")
                self.wait_until_healthy(started + timeout)
        seconds = time.monotonic() - started
        say(f"the stack {self.stack} is healthy and answers on {self.gateway_host}:{self.port} ({seconds:.1f} s)")

    def roll_checks_at_rest(self, databases: bool, deadline: float, tries: int = 3) -> list[str]:
        """check_rarely_at_rest, each update waited for; one that Swarm rolled back is asked again, at most tries
        times in all: under load (the lab's three engines on 2 cores) a new task can be judged unhealthy while it
        starts, which undoes an update that changes nothing but the checks. Returns the services updated."""
        updated: list[str] = []
        for _ in range(tries):
            rolled = self.check_rarely_at_rest(databases)
            states = {name: self.update_state(name, deadline, since_updating=True) for name in rolled}
            updated += [name for name, state in states.items() if state == "completed"]
            failed = {name: state for name, state in states.items() if state != "completed"}
            if not failed:
                return updated
            say(f"the healthcheck update of {', '.join(failed)} ended {', '.join(sorted(set(failed.values())))}")
            self.wait_until_healthy(deadline)
        raise SwarmError(f"the healthcheck update of {', '.join(failed)} did not complete\n{self.task_errors()}")

    def check_rarely_at_rest(self, databases: bool) -> list[str]:
        """Where the engine has start_interval, sets the healthcheck of every database (or of every other service)
        to it, a rolling update each, all at once; returns the services updated. The engine's own API, as no
        older CLI has the option."""
        environment = self.engine_environment or dict(os.environ)
        if subprocess.run([HAS_START_INTERVAL], env=environment, capture_output=True, timeout=60).returncode != 0:
            return []
        client = docker.from_env(environment=environment, version="auto", use_ssh_client=True)
        at_rest = {name: round(seconds * 10**9) for name, seconds in intervals_at_rest().items()}
        updated = []
        for service in client.services.list(filters={"label": f"com.docker.stack.namespace={self.stack}"}):
            if service.name.endswith("-db") != databases:
                continue
            template = copy.deepcopy(service.attrs["Spec"]["TaskTemplate"])
            check = template["ContainerSpec"].setdefault("Healthcheck", {})
            interval = at_rest.get(service.name.removeprefix(f"{self.stack}_"), DATABASE_CHECK_INTERVAL_NS)
            wanted = {"Interval": interval, "StartInterval": CHECK_START_INTERVAL_NS}
            if check.get("Test") == ["NONE"] or all(check.get(key) == value for key, value in wanted.items()):
                continue
            check.update(wanted)
            client.api.update_service(service.id, service.version, task_template=template, fetch_current_spec=True)
            updated.append(service.name)
        return updated

    def wait_until_healthy(self, deadline: float) -> None:
        lagging = ["not yet deployed"]
        while time.monotonic() < deadline:
            lagging = self.not_running() or self.not_answering()
            if not lagging:
                return
            time.sleep(1)
        raise SwarmError(f"not healthy in time: {', '.join(lagging)}\n{self.task_errors()}")

    def not_running(self) -> list[str]:
        """Services whose tasks are not all running (a task with a healthcheck runs once it is healthy)."""
        rows = self.docker("stack", "services", self.stack, "--format", "{{.Name}} {{.Replicas}}").splitlines()
        lagging = []
        for row in rows:
            name, replicas = row.split()[:2]
            running, desired = replicas.split("/")
            if running != desired or desired == "0":
                lagging.append(f"{name} {replicas}")
        return lagging if rows else ["no service yet"]

    def not_answering(self) -> list[str]:
        paths = ["/healthz", *(f"/api/{service}/health/" for service in SERVICES)]
        lagging = []
        for path in paths:
            try:
                status = str(requests.get(f"http://{self.gateway_host}:{self.port}{path}", timeout=2).status_code)
            except requests.RequestException as error:
                status = type(error).__name__
            if status != "200":
                lagging.append(f"{path} answers {status}")
        return lagging

    def task_errors(self) -> str:
        return self.docker(
            "stack", "ps", self.stack, "--no-trunc", "--filter", "desired-state=running",
            "--format", "{{.Name}} {{.CurrentState}} {{.Error}}",
        )  # fmt: skip

    def down(self, volumes: bool, images: bool) -> None:
        if self.docker("info", "--format", "{{.Swarm.LocalNodeState}}") == "active":
            self.docker("stack", "rm", self.stack)
            self.wait_until_removed()
            say(f"removed the stack {self.stack}")
        if volumes:  # volumes outlive the stack, and the swarm: removed whether or not the stack still runs
            label = f"label=com.docker.stack.namespace={self.stack}"
            names = self.docker("volume", "ls", "--quiet", "--filter", label).split()
            for name in names:  # a task's container may still be going: its volume is then still in use
                engine.patiently(partial(self.docker, "volume", "rm", name))
            say(f"removed the {len(names)} volumes of the stack {self.stack}")
        if images:
            self.remove_images()
        self.leave_if_made()

    def remove_images(self) -> None:
        """The images up built and tagged on this machine, and their names in the registry (if one is named)."""
        names = [f"{self.stack}/*", *([f"{self.registry}/{self.stack}/*"] if self.registry else [])]
        tagged = [output("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", name) for name in names]
        # Prometheus's only where up ran with METRICS=1: a name of no image would fail the whole command.
        built = [name for name in (f"{self.stack}-{service}" for service in (*BUILT, PROMETHEUS))
                 if output("docker", "image", "ls", "--quiet", name)]  # fmt: skip
        output("docker", "image", "rm", "--force", *"\n".join(tagged).split(), *built)

    def wait_until_removed(self, timeout: float = 60) -> None:
        """Stack removal goes on in the background: its containers and networks go some seconds later."""
        label = f"label=com.docker.stack.namespace={self.stack}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            containers = self.docker("ps", "--all", "--quiet", "--filter", label)
            networks = self.docker("network", "ls", "--quiet", "--filter", label)
            if not containers and not networks:
                return
            time.sleep(1)
        raise SwarmError(f"the stack {self.stack} was not removed within {timeout:.0f} s")

    def deploy(self, service: str, image: str | None, timeout: float) -> None:
        if service not in (*SERVICES, GATEWAY):
            raise SwarmError(f"no service {service!r}: choose one of {', '.join((*SERVICES, GATEWAY))}")
        started = time.monotonic()
        name = f"{self.stack}_{service}"
        running = self.docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", name)
        built = image is None
        image = image or self.build(service)[service]
        if running == image:
            say(f"{name} runs {image} already: nothing to roll")
            return
        if built and service != GATEWAY:  # built from this tree: its migrations are checked in it before it runs
            try:
                check_migrations_in_image(image, "swarm")
            except ToolError as refusal:
                raise SwarmError(f"{refusal}\nNothing was changed: {name} runs {running}.") from None
        say(f"rolling {name} to {image}")
        result = subprocess.run(
            ["docker", "service", "update", "--image", image, "--no-resolve-image", "--detach=false", name],
            cwd=ROOT, env=self.engine_environment, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        state = self.update_state(name, time.monotonic() + 60)
        said = (result.stderr or result.stdout).strip()
        if state == "rollback_completed":
            raise SwarmError(f"the new tasks of {name} failed: Swarm rolled it back, the old tasks serve\n{said}")
        if state != "completed":
            raise SwarmError(f"the update of {name} did not complete ({state})\n{said}")
        say(f"{name} runs {image} ({time.monotonic() - started:.1f} s)")

    def update_state(self, name: str, deadline: float, since_updating: bool = False) -> str:
        """The service's update state once it settles: completed, or rollback_completed after a failure.
        since_updating: an update was just asked for, so a settled state is the last update's until, within
        5 s, the new one is seen under way."""
        state = ""
        if since_updating:
            seen_until = time.monotonic() + 5
            while time.monotonic() < seen_until and self.service_update_state(name) not in ("updating", "completed"):
                time.sleep(0.2)
        while time.monotonic() < deadline:
            state = self.service_update_state(name)
            if state in ("completed", "rollback_completed", "paused", "rollback_paused"):
                return state
            time.sleep(1)
        return state or "unknown"

    def service_update_state(self, name: str) -> str:
        return self.docker("service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", name)


def write_once(path: Path, make) -> str:
    """The text at path, made by make() and written (readable by its owner only) if it is not there yet."""
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(make())
    return path.read_text()


# The keys servicekit.identity signs with (Ed25519, PEM), made with cryptography alone: the tools' environment
# has no Django and no servicekit.
def new_private_key_pem() -> str:
    private_key = Ed25519PrivateKey.generate()
    encoding, private_format = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return private_key.private_bytes(encoding, private_format, serialization.NoEncryption()).decode()


def public_pem_of(private_pem: str) -> str:
    public_key = serialization.load_pem_private_key(private_pem.encode(), password=None).public_key()
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def main() -> int:
    # docker stack deploy reads no .env: what a user set there applies here too, what the shell sets first.
    if (ROOT / ".env").exists():
        environ.Env.read_env(ROOT / ".env")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "deploy"])
    parser.add_argument("service", nargs="?", help="deploy: the service to roll")
    # The stack takes the Compose project's name, so that `make down` and `make swarm-down` speak of one stack.
    default_stack = os.environ.get("STACK_NAME") or os.environ.get("COMPOSE_PROJECT_NAME") or "microstack"
    parser.add_argument("--stack", default=default_stack)
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("SWARM_STATE_DIR", ROOT / ".swarm")))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8080")))
    parser.add_argument("--image", help="deploy: an image already built, instead of building the service's")
    parser.add_argument("--volumes", action="store_true", help="down: delete the stack's volumes too")
    parser.add_argument("--images", action="store_true", help="down: delete the images up built")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--engine",
        default=os.environ.get("SWARM_ENGINE"),
        help="a manager of the swarm, as DOCKER_HOST says it (ssh://user@host); images are built here",
    )
    parser.add_argument(
        "--registry",
        default=os.environ.get("SWARM_REGISTRY"),
        help="a registry every node pulls from (host:port): images are pushed there and deployed by that name",
    )
    parser.add_argument(
        "--gateway-host",
        default=os.environ.get("SWARM_GATEWAY_HOST", "127.0.0.1"),
        help="the address of the node labelled microstack.gateway, where up checks that the stack answers",
    )
    arguments = parser.parse_args()
    swarm = Swarm(
        arguments.stack,
        arguments.state_dir.resolve(),
        arguments.port,
        engine=arguments.engine,
        registry=arguments.registry,
        gateway_host=arguments.gateway_host,
    )

    def act() -> None:
        if arguments.command == "up":
            swarm.up(arguments.timeout)
        elif arguments.command == "down":
            swarm.down(arguments.volumes, arguments.images)
        else:
            if not arguments.service:
                raise SwarmError("usage: swarm.py deploy <service>")
            swarm.deploy(arguments.service, arguments.image, arguments.timeout)

    return tool_main("swarm", act)


if __name__ == "__main__":
    sys.exit(main())
