"""A copy of the stack on Docker Swarm under its own stack name and port, driven through swarm.py.

It answers the same calls as a Compose Stack (get, post, login, container, scale...), so the HTTP contract tests
run against either; its containers are the local node's tasks of each service.
"""

import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from docker.models.containers import Container

from stack import ROOT, Stack, run

SWARM = [sys.executable, str(ROOT / "scripts" / "swarm.py")]


class SwarmStack(Stack):
    def __init__(self, project: str, environment: dict[str, str] | None = None):
        super().__init__(project, environment)
        # Its secrets, and the note that it made the swarm, stay out of the user's own .swarm/.
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"{project}-"))

    def swarm(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
        command = [*SWARM, *arguments, "--stack", self.project, "--state-dir", str(self.state_dir)]
        command += ["--port", str(self.port)]
        return run(*command, environment=self.compose_environment(), timeout=timeout)

    def up(self) -> None:
        """As Stack.up: a failure, a timeout or Ctrl-C while it comes up takes down whatever had started."""
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

    def service_name(self, service: str) -> str:
        return f"{self.project}_{service}"

    def containers(self, service: str | None = None, *, all: bool = False) -> list[Container]:
        label = f"com.docker.swarm.service.name={self.service_name(service)}" if service else None
        labels = [f"com.docker.stack.namespace={self.project}", *([label] if label else [])]
        return self.docker.containers.list(all=all, filters={"label": labels})

    def scale(self, service: str, replicas: int) -> None:
        """Runs this many tasks of service and returns once they run (healthy)."""
        run("docker", "service", "scale", "--detach=false", f"{self.service_name(service)}={replicas}", timeout=300)

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
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)

    def task_image(self, service: str) -> str:
        return self.docker.services.get(self.service_name(service)).attrs["Spec"]["TaskTemplate"]["ContainerSpec"][
            "Image"
        ]
