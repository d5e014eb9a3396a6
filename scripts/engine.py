"""One way to ask the Docker engine to remove, stop, pause or create, for the tools, the harness, the bench and the
drills alike: the engine's known passing refusals are waited out within a bound; what cannot be waited out (a
network's stale endpoint) is forced as far as Docker allows, and what nothing removes is left under its unique
name with one line said, so that a run which proved what it was for is not failed by the engine's bookkeeping.
"""

import re
import sys
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TypeVar

import docker
from docker.models.containers import Container

Result = TypeVar("Result")

# Refusals that pass by themselves within seconds (Docker 20.10 to 28), by what the engine says.
PASSING_REFUSALS = re.compile(
    "|".join(
        [
            r"unable to freeze",  # the cgroup freezer, while the container's processes fork (20.10)
            r"is already in use by container",  # a container's name, just after that container's removal
            r"removal of container \S+ is already in progress",
            r"has active endpoints",  # a network, while its containers' endpoints are released
            r"volume is in use",  # a volume, until the removal of its last container completes
            r"network with name \S+ already exists",  # a stack's network while `docker stack rm` goes on
            r"marked for removal",
            r"device or resource busy",
        ]
    )
)
# A network's refusal that may outlast any wait: an endpoint the engine still counts for a container that is gone.
STALE_ENDPOINT = re.compile(r"has active endpoints")
# What the engine says when what was asked is already so: nothing left to do.
ALREADY_SO = re.compile(
    r"No such (?:container|network|volume|image)|not found|is already paused|is not paused"
    r"|is not connected to (?:the )?network"
)
# How long a passing refusal is waited out, by default.
PATIENCE_SECONDS = 30.0


def say(message: str) -> None:
    print(f"engine: {message}", file=sys.stderr, flush=True)


def patiently(
    call: Callable[[], Result],
    *,
    within: float = PATIENCE_SECONDS,
    passing: re.Pattern = PASSING_REFUSALS,
    already_so: re.Pattern | None = ALREADY_SO,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Result | None:
    """What call returns, asked again while the engine refuses it for a passing reason, for at most `within`
    seconds; then its last refusal is raised. A refusal that says the thing is already so (already_so: for a
    removal or a pause; None for a call that makes something, whose "not found" is a failure) returns None. Any
    exception counts (the SDK's APIError, a failed command's ToolError): it is judged by what it says."""
    deadline = clock() + within
    pause = 0.2
    while True:
        try:
            return call()
        except Exception as error:
            said = str(error)
            if already_so is not None and already_so.search(said):
                return None
            if not passing.search(said) or clock() + pause > deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 2.0)


def pause(container: Container, within: float = PATIENCE_SECONDS) -> None:
    """`docker pause`, asked again while the freezer refuses: a fault test must inject its fault."""
    patiently(container.pause, within=within)


def remove_network(client: docker.DockerClient, name: str, endpoints: Iterable[str] = (), within: float = 10) -> bool:
    """Removes a network; whether it is gone. An endpoint left by a container that is gone is disconnected by
    force, by the names of the containers the network had (endpoints) and of those it still lists; a network
    that the engine refuses to remove even then is left as it is, with one line said (only a restart of the
    engine clears such an endpoint)."""
    try:
        network = client.networks.get(name)
    except docker.errors.NotFound:
        return True
    try:
        network.remove()
        return True
    except docker.errors.APIError as error:
        if ALREADY_SO.search(str(error)):
            return True
        if not STALE_ENDPOINT.search(str(error)):
            raise
    network.reload()
    attached = [entry["Name"] for entry in (network.attrs.get("Containers") or {}).values()]
    for endpoint in dict.fromkeys([*attached, *endpoints]):
        patiently(partial(client.api.disconnect_container_from_network, endpoint, name, force=True))
    try:
        patiently(network.remove, within=within)
        return True
    except docker.errors.APIError as error:
        if not STALE_ENDPOINT.search(str(error)):
            raise
    say(f"left the network {name}: the engine counts an endpoint on it that no container holds (its restart clears it)")
    return False


def remove_leftovers(
    client: docker.DockerClient, label: str, *, volumes: bool, endpoints: Iterable[str] = ()
) -> list[str]:
    """Removes what still carries a label (com.docker.compose.project=<name>, say) once its project is down:
    containers, networks and, if volumes, volumes. Returns the names of networks left (see remove_network)."""
    for container in client.containers.list(all=True, filters={"label": label}):
        patiently(partial(container.remove, force=True))
    endpoints = list(endpoints)
    left = [
        network.name
        for network in client.networks.list(filters={"label": label})
        if not remove_network(client, network.name, endpoints)
    ]
    if volumes:
        for volume in client.volumes.list(filters={"label": label}):
            patiently(partial(volume.remove, force=True))
    return left


def remove_cgroup_parents(names: list[str], root: Path = Path("/sys/fs/cgroup")) -> None:
    """The cgroup parents (--cgroup-parent) of engines that ran in containers (the lab's nodes, the fresh
    machine), in each hierarchy, empty once their engines are gone: nothing else removes them."""
    parents = [root / name for name in names] + [hierarchy / name for hierarchy in root.iterdir() for name in names]
    for parent in parents:
        if not parent.is_dir():
            continue
        # Deepest first: a cgroup is removed with rmdir, and only once it has no child.
        for cgroup in sorted((path for path in parent.rglob("*") if path.is_dir()), key=lambda p: -len(p.parts)):
            cgroup.rmdir()
        parent.rmdir()
