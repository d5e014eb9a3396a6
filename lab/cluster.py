"""The three-node lab: `make cluster-up`, `make cluster-down` (lab/docker-compose.yml, docs/cluster.md).

up: builds an engine's image and a registry's from the project's Debian base (DEBIAN_IMAGE), starts the registry
and three Docker engines, each in a container with its own address on the lab's network, joins them into one
swarm of three managers, labels the nodes for placement (PLACEMENT), then deploys swarm/docker-stack.yml unchanged with
swarm.py through node1's engine: the images are built here, pushed to the lab's registry, and pulled by each node.
The gateway answers on 127.0.0.1:PORT, published from node1's container.
down: removes every container, network and volume of the lab's Compose project (the engines, with all they ran),
the images up pushed or tagged here, and the engines' cgroup parents; nothing else.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import docker
import environ

# Run as a program, from this tree or a copy of it: the tools' shared module (scripts/project.py) and swarm/swarm.py.
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / folder) for folder in ("scripts", "swarm")]

import engine
from project import ROOT, ToolError, run, tool_main
from swarm import Swarm

LAB_FILE = ROOT / "lab" / "docker-compose.yml"
NODES = ["node1", "node2", "node3"]
# node1 holds the gateway (its port is published from node1's container) and two databases, node2 the other two,
# node3 only stateless tasks: a node lost is then either a database's node or a worker's.
PLACEMENT = {
    "node1": ["microstack.gateway", "microstack.service1-db", "microstack.service2-db"],
    "node2": ["microstack.service3-db", "microstack.service4-db"],
    "node3": [],
}
# An engine in no swarm, running nothing (lab/docker-compose.yml): the drill's reference at rest.
REFERENCE = "reference"


def say(message: str) -> None:
    print(f"cluster: {message}", flush=True)


class Lab:
    def __init__(self, name: str, stack: str, state_dir: Path, port: int, registry_port: int):
        self.name = name
        self.stack = stack
        self.state_dir = state_dir / name
        self.sockets = self.state_dir / "sockets"  # each node's engine socket, in a folder of its own
        self.port = port
        self.registry_port = registry_port

    def compose(self, *arguments: str, timeout: float = 600) -> str:
        environment = {
            **os.environ,
            "LAB": self.name,
            "LAB_GATEWAY_PORT": str(self.port),
            "LAB_REGISTRY_PORT": str(self.registry_port),
            "LAB_SOCKETS": str(self.sockets),
        }
        # The project's .env names the base image the lab is built on (DEBIAN_IMAGE, from `make base-images`).
        env_file = ["--env-file", str(ROOT / ".env")] if (ROOT / ".env").exists() else []
        command = ["docker", "compose", "--file", str(LAB_FILE), *env_file, "--project-name", self.name, *arguments]
        return run(*command, environment=environment, timeout=timeout).stdout.strip()

    def engine(self, node: str) -> str:
        """The node's engine, as DOCKER_HOST says it."""
        return f"unix://{self.sockets / node / 'docker.sock'}"

    def docker(self, node: str, *arguments: str) -> str:
        environment = {**os.environ, "DOCKER_HOST": self.engine(node)}
        return run("docker", *arguments, environment=environment, timeout=120).stdout.strip()

    def container(self, node: str) -> str:
        """The id of the container the node's (or the reference) engine runs in."""
        return self.compose("--profile", REFERENCE, "ps", "--all", "--quiet", node)

    def address(self, node: str) -> str:
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return run("docker", "inspect", "--format", template, self.container(node)).stdout.strip()

    def swarm(self) -> Swarm:
        registry = f"127.0.0.1:{self.registry_port}"  # on the host, and on each node (node-entrypoint.sh)
        return Swarm(self.stack, self.state_dir, self.port, engine=self.engine("node1"), registry=registry)

    def up(self, timeout: float) -> None:
        started = time.monotonic()
        for node in NODES:
            (self.sockets / node).mkdir(parents=True, exist_ok=True)
        say(f"starting the registry and the engines {', '.join(NODES)}")
        self.compose("up", "--build", "--detach", "--wait", "--wait-timeout", "120")
        self.form_swarm()
        self.label_nodes()
        self.swarm().up(max(timeout - (time.monotonic() - started), 60))
        say(f"the lab {self.name} is up in {time.monotonic() - started:.1f} s: http://127.0.0.1:{self.port}/status/")

    def form_swarm(self) -> None:
        """node1 makes the swarm; node2 and node3 join it as managers: losing any one keeps a quorum (2 of 3)."""
        if self.docker(NODES[0], "info", "--format", "{{.Swarm.LocalNodeState}}") == "active":
            return
        first = self.address(NODES[0])
        self.docker(NODES[0], "swarm", "init", "--advertise-addr", first)
        token = self.docker(NODES[0], "swarm", "join-token", "--quiet", "manager")
        for node in NODES[1:]:
            self.docker(
                node, "swarm", "join", "--token", token, "--advertise-addr", self.address(node), f"{first}:2377"
            )
        say(f"the swarm: {', '.join(NODES)}, all managers")

    def label_nodes(self) -> None:
        for node, labels in PLACEMENT.items():
            if labels:
                additions = [argument for label in labels for argument in ("--label-add", f"{label}=true")]
                self.docker(NODES[0], "node", "update", *additions, node)
        say("labelled " + "; ".join(f"{node}: {', '.join(labels) or 'none'}" for node, labels in PLACEMENT.items()))

    def start_reference(self) -> None:
        (self.sockets / REFERENCE).mkdir(parents=True, exist_ok=True)
        self.compose("--profile", REFERENCE, "up", "--detach", "--wait", REFERENCE)

    def down(self) -> None:
        endpoints = self.compose("--profile", REFERENCE, "ps", "--all", "--format", "{{.Name}}").split()
        try:
            engine.patiently(
                lambda: self.compose("--profile", REFERENCE, "down", "--volumes", "--remove-orphans", "--timeout", "5")
            )
        except ToolError as error:
            if not engine.STALE_ENDPOINT.search(str(error)):
                raise
        label = f"com.docker.compose.project={self.name}"
        engine.remove_leftovers(docker.from_env(), label, volumes=True, endpoints=endpoints)
        self.swarm().remove_images()
        engine.remove_cgroup_parents([*NODES, REFERENCE])
        shutil.rmtree(self.sockets, ignore_errors=True)
        say(f"removed the lab {self.name}: its containers, network, volumes and images")


def main() -> int:
    if (ROOT / ".env").exists():  # DEBIAN_IMAGE, from `make base-images`
        environ.Env.read_env(ROOT / ".env")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--lab", default=os.environ.get("LAB", "microstack-lab"), help="the lab's Compose project")
    parser.add_argument("--stack", default=os.environ.get("LAB_STACK", "microstack-lab"), help="the swarm stack")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".cluster", help="sockets and secrets")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_GATEWAY_PORT", "8090")))
    parser.add_argument("--registry-port", type=int, default=int(os.environ.get("LAB_REGISTRY_PORT", "5005")))
    parser.add_argument("--timeout", type=float, default=600)
    arguments = parser.parse_args()
    lab = Lab(arguments.lab, arguments.stack, arguments.state_dir.resolve(), arguments.port, arguments.registry_port)

    def act() -> None:
        if arguments.command == "up":
            try:
                lab.up(arguments.timeout)
            except ToolError as error:
                raise ToolError(f"{error}\n(`make cluster-down` removes what was started)") from None
        else:
            lab.down()

    return tool_main("cluster", act)


if __name__ == "__main__":
    sys.exit(main())
