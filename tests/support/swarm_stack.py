"""A copy of the stack on Docker Swarm under its own stack name and port, driven through swarm.py: on this
machine's engine (SwarmStack), or on a three-node lab of its own (ClusterStack, lab/cluster.py).

It answers the same calls as a Compose Stack (get, post, login, container, scale...), so the HTTP contract tests
run against either; its containers are the tasks of each service.
"""

import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import docker
import requests
from docker.models.containers import Container

from cluster import NODES, Lab
from project import ROOT, ComposeProject, run
from stack import Stack, reserve_port

SWARM = [sys.executable, str(ROOT / "swarm" / "swarm.py")]


class SwarmStack(Stack):
    def __init__(self, project: str, environment: dict[str, str] | None = None):
        super().__init__(project, environment)
        # Its secrets, and the note that it made the swarm, stay out of the user's own .swarm/.
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"{project}-"))

    def swarm(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
        command = [*SWARM, *arguments, "--stack", self.project, "--state-dir", str(self.state_dir)]
        command += ["--port", str(self.port)]
        return run(*command, environment=self.compose_environment(), timeout=timeout)

    def up(self, images_of: ComposeProject | None = None) -> None:
        """As Stack.up: a failure, a timeout or Ctrl-C while it comes up takes down whatever had started. Its images
        are always its own (swarm.py tags them by their content)."""
        try:
            self.swarm("up", "--timeout", "300")
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        try:
            self.swarm("down", "--volumes", "--images")
        finally:
            self.port_lock.close()
            self.prometheus_port_lock.close()

    def service_name(self, service: str) -> str:
        return f"{self.project}_{service}"

    def task_labels(self, service: str | None = None) -> list[str]:
        """The labels of this stack's task containers, or of one service's."""
        label = f"com.docker.swarm.service.name={self.service_name(service)}" if service else None
        return [f"com.docker.stack.namespace={self.project}", *([label] if label else [])]

    def containers(self, service: str | None = None, *, all: bool = False) -> list[Container]:
        return self.docker.containers.list(all=all, filters={"label": self.task_labels(service)})

    def nodes_of(self, service: str) -> dict[str, str]:
        """Each running task of service: its container's hostname (what X-Served-By names), and its node."""
        hostnames = {node.id: node.attrs["Description"]["Hostname"] for node in self.docker.nodes.list()}
        tasks = self.docker.services.get(self.service_name(service)).tasks(filters={"desired-state": "running"})
        return {
            task["Status"]["ContainerStatus"]["ContainerID"][:12]: hostnames[task["NodeID"]]
            for task in tasks
            if task["Status"]["State"] == "running"
        }

    def scale(self, service: str, replicas: int) -> None:
        """Runs this many tasks of service and returns once they run (healthy)."""
        command = ["docker", "service", "scale", "--detach=false", f"{self.service_name(service)}={replicas}"]
        run(*command, environment=self.engine_environment(), timeout=300)

    def engine_environment(self) -> dict[str, str]:
        """The environment of a docker command to a manager of the swarm: this machine's engine."""
        return self.compose_environment()

    def derived_image(self, service: str, dockerfile_tail: str, context: Path | None = None) -> str:
        """A new image made from what service runs now, with dockerfile_tail added (its COPY lines from context, a
        folder); removed by down()."""
        tag = f"{self.project}/{service}:test-{uuid.uuid4().hex[:8]}"
        dockerfile = f"FROM {self.task_image(service)}\n{dockerfile_tail}\n"
        if context is None:
            run("docker", "build", "--quiet", "--tag", tag, "-", stdin=dockerfile)
        else:
            with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile") as file:
                file.write(dockerfile)
                file.flush()
                run("docker", "build", "--quiet", "--tag", tag, "--file", file.name, str(context))
        return tag

    def deploy(self, service: str, image: str) -> subprocess.CompletedProcess:
        """`make swarm-deploy` of an image already built; the result, whether it rolled or was rolled back."""
        command = [*SWARM, "deploy", service, "--image", image, "--stack", self.project]
        command += ["--state-dir", str(self.state_dir)]
        environment = self.compose_environment()
        return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)

    def task_image(self, service: str) -> str:
        return self.docker.services.get(self.service_name(service)).attrs["Spec"]["TaskTemplate"]["ContainerSpec"][
            "Image"
        ]


class ClusterStack(SwarmStack):
    """The stack on a three-node lab of its own (its own lab name, gateway and registry ports). Its swarm commands
    go to node1's engine, as a user's do with SWARM_ENGINE; images reach the nodes through the lab's registry."""

    def __init__(self, project: str, environment: dict[str, str] | None = None):
        super().__init__(project, environment)
        self.registry_port, self.registry_port_lock = reserve_port()
        self.lab = Lab(f"{project}-lab", project, self.state_dir, self.port, self.registry_port)
        self.registry = f"127.0.0.1:{self.registry_port}"
        self.host_docker = self.docker  # this machine's engine, which runs the lab's engines
        self.engines: dict[str, docker.DockerClient] = {}

    def compose_environment(self) -> dict[str, str]:
        """What a user sets to run the swarm commands (make swarm-deploy, say) against a swarm elsewhere."""
        return {
            **super().compose_environment(),
            "SWARM_ENGINE": self.lab.engine(NODES[0]),
            "SWARM_REGISTRY": self.registry,
            "STACK_NAME": self.project,
            "SWARM_STATE_DIR": str(self.lab.state_dir),
            "GATEWAY_PORT": str(self.port),
        }

    def engine_environment(self) -> dict[str, str]:
        return {**self.compose_environment(), "DOCKER_HOST": self.lab.engine(NODES[0])}

    def cluster(self, command: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """`lab/cluster.py up|down` for this lab, as `make cluster-up` runs it: with the suite's settings
        (SERVICE1_PROCESSES...) in its environment, for the stack it deploys."""
        arguments = ["--lab", self.lab.name, "--stack", self.project, "--state-dir", str(self.state_dir)]
        arguments += ["--port", str(self.port), "--registry-port", str(self.registry_port)]
        command_line = [sys.executable, str(ROOT / "lab" / "cluster.py"), command, *arguments]
        return run(*command_line, environment=self.compose_environment(), timeout=timeout)

    def up(self, images_of: ComposeProject | None = None) -> None:
        try:
            self.cluster("up")
            self.engines = {node: docker.DockerClient(base_url=self.lab.engine(node)) for node in NODES}
            self.docker = self.engines[NODES[0]]
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        try:
            self.cluster("down")
        finally:
            self.port_lock.close()
            self.prometheus_port_lock.close()
            self.registry_port_lock.close()

    def containers(self, service: str | None = None, *, all: bool = False) -> list[Container]:
        """The tasks' containers on every node whose engine answers (a lost node's are not there to ask)."""
        found = []
        for engine in self.engines.values():
            try:
                found += engine.containers.list(all=all, filters={"label": self.task_labels(service)})
            except (docker.errors.DockerException, requests.RequestException):
                continue
        return found

    def derived_image(self, service: str, dockerfile_tail: str, context: Path | None = None) -> str:
        """As SwarmStack's, pushed to the lab's registry for the nodes to pull, and named there only."""
        built = super().derived_image(service, dockerfile_tail, context)
        pushed = f"{self.registry}/{built}"
        run("docker", "tag", built, pushed)
        run("docker", "push", "--quiet", pushed, timeout=300)
        run("docker", "image", "rm", built)  # the local name only: the image stays, named as pushed
        return pushed

    # --- the lab's faults -------------------------------------------------------------------------------------

    def kill_node(self, node: str) -> None:
        """The node lost: its engine's container killed, with every task it ran."""
        run("docker", "kill", self.lab.container(node))

    def start_node(self, node: str) -> None:
        """The lost node back: its engine starts again and rejoins the swarm (its state is in its volume)."""
        self.lab.compose("start", node)

    def node_state(self, node: str) -> str:
        return self.lab.docker(NODES[0], "node", "inspect", "--format", "{{.Status.State}}", node)

    def set_availability(self, node: str, availability: str) -> None:
        self.lab.docker(NODES[0], "node", "update", "--availability", availability, node)

    def rebalance(self, service: str) -> None:
        """Its tasks spread over the nodes again. Swarm moves none back to a node that returns, and a forced update
        does not spread them either: each new task starts while the old one still counts on its node. Scaled to
        one and back, the new tasks go to the nodes that run none."""
        replicas = len(self.nodes_of(service))
        self.scale(service, 1)
        self.scale(service, replicas)

    def runs_off(self, service: str, replicas: int, node: str) -> bool:
        """All replicas of service run, and none on node (drained or lost)."""
        nodes = self.nodes_of(service)
        return len(nodes) == replicas and node not in nodes.values()

    def all_running(self) -> bool:
        return self.lab.swarm().not_running() == []
