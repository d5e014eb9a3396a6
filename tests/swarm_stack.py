"""A copy of the stack on Docker Swarm under its own stack name and port, driven through scripts/swarm.py.

It answers the same calls as a Compose Stack (get, post, login, container, scale...), so the HTTP contract tests
run against either; its containers are the local node's tasks of each service.
"""

import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from docker.models.containers import Container

from stack import ROOT, Stack

SWARM = [sys.executable, str(ROOT / "scripts" / "swarm.py")]


class SwarmStack(Stack):
    def __init__(self, project: str, port: int, environment: dict[str, str] | None = None):
        super().__init__(project, port, environment)
        # Its secrets, and the note that it made the swarm, stay out of the user's own .swarm/.
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"{project}-"))

    def swarm(self, *arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
        command = [*SWARM, *arguments, "--stack", self.project, "--state-dir", str(self.state_dir)]
        command += ["--port", str(self.port)]
        try:
            return subprocess.run(
                command, cwd=ROOT, env=self.compose_environment(), check=True, timeout=timeout,
                capture_output=True, text=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as error:
            error.add_note(f"swarm.py said:\n{error.stdout}\n{error.stderr}")
            raise

    def up(self) -> None:
        self.swarm("up", "--timeout", "300")

    def down(self) -> None:
        self.swarm("down", "--volumes", "--images")

    def service_name(self, service: str) -> str:
        return f"{self.project}_{service}"

    def containers(self, service: str | None = None, *, all: bool = False) -> list[Container]:
        label = f"com.docker.swarm.service.name={self.service_name(service)}" if service else None
        labels = [f"com.docker.stack.namespace={self.project}", *([label] if label else [])]
        return self.docker.containers.list(all=all, filters={"label": labels})

    def scale(self, service: str, replicas: int) -> None:
        """Runs this many tasks of service and returns once they run (healthy)."""
        subprocess.run(
            ["docker", "service", "scale", "--detach=false", f"{self.service_name(service)}={replicas}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip

    def derived_image(self, service: str, dockerfile_tail: str) -> str:
        """A new image made from what service runs now, with dockerfile_tail added; removed by down()."""
        tag = f"{self.project}/{service}:test-{uuid.uuid4().hex[:8]}"
        dockerfile = f"FROM {self.task_image(service)}\n{dockerfile_tail}\n"
        subprocess.run(["docker", "build", "--quiet", "--tag", tag, "-"], input=dockerfile, text=True, check=True,
                       capture_output=True)  # fmt: skip
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
