"""Deploys one part of a running stack without touching the others (`make deploy SERVICE=service2`).

A service rolls: its new image is built and its migrations are checked in it (servicekit's check_migrations: the
old replicas serve while the new ones migrate, so a migration the old code cannot run against is refused, with the
safe sequence, before any replica runs the image); new replicas start beside the old ones, and only once every new
replica is healthy and in the gateway's upstream are the old ones drained and stopped, one at a time. A new replica that
does not become healthy aborts the rollout: the new replicas are removed, the old ones never stopped serving.

The gateway (SERVICE=nginx) reloads: its new configuration is checked with `nginx -t` inside the running
gateway and applied with a graceful reload; an invalid one is refused and the running one stays.
"""

import argparse
import io
import subprocess
import sys
import tarfile
import time
from functools import partial
from pathlib import Path

from docker.models.containers import Container

import engine
from project import (
    GATEWAY,
    GATEWAY_UPSTREAMS,
    SERVICES,
    ComposeProject,
    ToolError,
    compose_project_name,
    routed_replicas,
    tool_main,
)

# Where the gateway runs its configuration from (see nginx/entrypoint.sh).
LIVE_CONFIG = "/tmp/nginx/conf"
# A new configuration is unpacked beside the live one (as /tmp/nginx/nginx), so that its relative include of
# ../generated (upstreams and settings rendered from the environment) resolves as it will once live.
ARCHIVE_TARGET = "/tmp/nginx"
STAGED_CONFIG = "/tmp/nginx/nginx"


class DeployError(ToolError):
    """The deploy stopped; the stack is as it was before it."""


def say(message: str) -> None:
    print(f"deploy: {message}", flush=True)


class Deployment(ComposeProject):
    """A running Compose project of the stack, as the user's own environment and .env describe it."""

    def __init__(self, project: str, timeout: float):
        super().__init__(project)
        self.timeout = timeout

    def gateway(self) -> Container:
        gateways = self.containers(GATEWAY)
        if len(gateways) != 1:
            raise DeployError(f"expected one running gateway in project {self.project}, found {len(gateways)}")
        return gateways[0]

    def exec_in_gateway(self, *command: str) -> str:
        result = self.gateway().exec_run(list(command))
        if result.exit_code != 0:
            raise DeployError(result.output.decode().strip())
        return result.output.decode()

    # --- services -------------------------------------------------------------------------------------------

    def roll(self, service: str, build: bool) -> None:
        started = time.monotonic()
        old = self.containers(service)
        if not old:
            raise DeployError(f"{service} has no running replica in project {self.project}: start the stack first")
        if build:
            say(f"building {service}")
            self.compose("build", service, timeout=1800)
        try:
            self.check_migrations(service, "deploy")
        except ToolError as refusal:
            # The image Compose names is the running release's again, so no later `up` starts the refused one.
            self.docker.images.get(old[0].image.id).tag(self.image_of(service))
            raise DeployError(f"{refusal}\nNothing was changed: no replica runs the new image.") from None
        self.replace(service, old, len(old))
        say(f"{service} now runs {len(old)} new replica(s); took {time.monotonic() - started:.1f} s")

    def replace(self, service: str, old: list[Container], count: int) -> None:
        """Starts count new replicas of service beside the old ones, as the Compose files and .env say now (its
        new image, or new workers: make scale), and once every new one is healthy and routed drains and stops
        the old ones, one at a time. A new replica that does not become healthy aborts: the new ones are
        removed, and the old ones never stopped serving."""
        say(f"starting {count} new replica(s) of {service} beside the {len(old)} running")
        self.compose(
            "up", "--detach", "--no-deps", "--no-recreate", "--scale", f"{service}={len(old) + count}", service
        )
        old_ids = {container.id for container in old}
        new = [container for container in self.containers(service) if container.id not in old_ids]
        try:
            self.wait_healthy(new)
            self.wait_routed(new)
        except DeployError:
            say(f"aborting: removing the new replicas; the {len(old)} old one(s) keep serving")
            for container in new:
                engine.patiently(partial(container.remove, force=True))
            raise
        for container in old:
            say(f"draining and stopping {hostname(container)}")
            container.stop(timeout=10)
            engine.patiently(container.remove)

    def wait_healthy(self, containers: list[Container]) -> None:
        deadline = time.monotonic() + self.timeout
        waiting = list(containers)
        while waiting:
            for container in list(waiting):
                container.reload()
                status = container.attrs["State"].get("Health", {}).get("Status")
                if status == "healthy":
                    say(f"{hostname(container)} is healthy")
                    waiting.remove(container)
                elif status == "unhealthy" or container.status in ("exited", "dead"):
                    raise DeployError(
                        f"new replica {hostname(container)} is {status or container.status}:\n"
                        f"{last_health_output(container)}"
                    )
            if waiting and time.monotonic() > deadline:
                names = ", ".join(hostname(container) for container in waiting)
                raise DeployError(f"new replica(s) {names} not healthy within {self.timeout:.0f} s")
            time.sleep(0.5)

    def wait_routed(self, containers: list[Container]) -> None:
        """Until the upstreams nginx loaded name every new replica (unix transport: by its socket)."""
        deadline = time.monotonic() + 15
        while True:
            routed = routed_replicas(self.exec_in_gateway("cat", GATEWAY_UPSTREAMS))
            missing = [c for c in containers if not routes_to(routed.get(service_of(c), []), c)]
            if not missing:
                say("the gateway routes to every new replica")
                return
            if time.monotonic() > deadline:
                raise DeployError(f"the gateway did not pick up {', '.join(hostname(c) for c in missing)}")
            time.sleep(0.2)

    # --- the gateway ----------------------------------------------------------------------------------------

    def reload_gateway(self, build: bool, config_dir: Path | None) -> None:
        gateway = self.gateway()  # before building: a stack that is not running has nothing to reload
        if config_dir is None:
            if build:
                say("building the gateway image")
                self.compose("build", GATEWAY, timeout=1800)
            archive = self.config_from_image()
        else:
            archive = config_from_directory(config_dir)
        self.exec_in_gateway("rm", "-rf", STAGED_CONFIG)
        self.unpack_in_gateway(archive, ARCHIVE_TARGET)
        try:
            self.exec_in_gateway("nginx", "-t", "-q", "-c", f"{STAGED_CONFIG}/nginx.conf")
        except DeployError as error:
            self.exec_in_gateway("rm", "-rf", STAGED_CONFIG)
            raise DeployError(f"the new gateway configuration is invalid; the running one stays:\n{error}") from None
        swap = f"rm -rf /tmp/nginx/previous && mv {LIVE_CONFIG} /tmp/nginx/previous && mv {STAGED_CONFIG} {LIVE_CONFIG}"
        self.exec_in_gateway("bash", "-c", swap)
        self.exec_in_gateway("nginx", "-q", "-c", f"{LIVE_CONFIG}/nginx.conf", "-s", "reload")
        say(f"the gateway reloaded its new configuration gracefully (container {gateway.short_id} kept)")

    def unpack_in_gateway(self, archive: bytes, directory: str) -> None:
        """Unpacks a tar archive as the gateway's own user. Not `docker cp`: it cannot write into a tmpfs, and the
        gateway's /tmp is one (its root file system is read-only)."""
        command = ["docker", "exec", "-i", self.gateway().id, "tar", "-x", "-f", "-", "-C", directory]
        result = subprocess.run(command, input=archive, capture_output=True)
        if result.returncode != 0:
            raise DeployError(f"could not unpack the configuration in the gateway: {result.stderr.decode().strip()}")

    def config_from_image(self) -> bytes:
        """/etc/nginx of the gateway's newly built image, as a tar archive with a top folder `nginx`."""
        image = self.image_of(GATEWAY)
        container = self.docker.containers.create(image, command=["true"], entrypoint=[])
        try:
            stream, _ = container.get_archive("/etc/nginx")
            return b"".join(stream)
        finally:
            engine.patiently(container.remove)


def config_from_directory(directory: Path) -> bytes:
    """A gateway configuration folder laid out like nginx/ (nginx.conf, conf.d/, snippets/), as a tar archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(directory / "nginx.conf", arcname="nginx/nginx.conf")
        archive.add(directory / "conf.d", arcname="nginx/conf.d")
        archive.add(directory / "snippets", arcname="nginx/snippets")
    return buffer.getvalue()


def hostname(container: Container) -> str:
    return container.attrs["Config"]["Hostname"]


def service_of(container: Container) -> str:
    return container.labels["com.docker.compose.service"]


def routes_to(replicas: list[str], container: Container) -> bool:
    """Whether the replicas of an upstream (routed_replicas) include the container: its socket, or its address."""
    if any(replica.endswith(f"/{hostname(container)}.sock") for replica in replicas):
        return True
    addresses = [network["IPAddress"] for network in container.attrs["NetworkSettings"]["Networks"].values()]
    return any(replica.startswith(f"{address}:") for replica in replicas for address in addresses if address)


def last_health_output(container: Container) -> str:
    log = container.attrs["State"].get("Health", {}).get("Log") or []
    return log[-1]["Output"].strip() if log else "(no healthcheck output)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help="a service of the stack (a folder such as service2), or nginx for the gateway")
    parser.add_argument("--project", help="the Compose project name (default: Compose's own, so COMPOSE_PROJECT_NAME)")
    parser.add_argument("--no-build", action="store_true", help="deploy the image already built")
    parser.add_argument("--timeout", type=float, default=90, help="seconds new replicas have to become healthy")
    parser.add_argument("--config-dir", type=Path, help="nginx only: apply this folder's configuration instead")
    arguments = parser.parse_args()

    def deploy() -> None:
        if arguments.service not in [*SERVICES, GATEWAY]:
            raise DeployError(f"unknown service {arguments.service!r}: choose one of {', '.join([*SERVICES, GATEWAY])}")
        deployment = Deployment(arguments.project or compose_project_name(), arguments.timeout)
        if arguments.service == GATEWAY:
            deployment.reload_gateway(build=not arguments.no_build, config_dir=arguments.config_dir)
        else:
            deployment.roll(arguments.service, build=not arguments.no_build)

    return tool_main("deploy", deploy)


if __name__ == "__main__":
    sys.exit(main())
