"""The suite as a newcomer: the project's own commands (make, scripts/) run in a shell of the user's, on a project
name no other stack has, and what they leave on the engine."""

import os
import subprocess
import uuid
from pathlib import Path

from project import ROOT, ComposeProject


def newcomer_environment(**extra: str) -> dict[str, str]:
    """A shell of the user's: a project name no stack has, none of the suite's own settings."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("COMPOSE_", "GATEWAY_"))}
    return {**environment, "COMPOSE_PROJECT_NAME": f"newcomer-{uuid.uuid4().hex[:8]}", **extra}


def make(
    *arguments: str, environment: dict[str, str], cwd: Path = ROOT, timeout: float = 300
) -> subprocess.CompletedProcess:
    command = ["make", "--no-print-directory", *arguments]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)


def remove_project(environment: dict[str, str]) -> None:
    """Takes a newcomer's project down with its volumes and images (their names too: ComposeProject says why)."""
    project = ComposeProject(environment["COMPOSE_PROJECT_NAME"], environment)
    project.take_down("--rmi", "local", volumes=True, timeout=120)
    project.remove_own_image_names()


def labelled(kind: str, project: str) -> list[str]:
    """The names of the engine's containers, networks or volumes (kind) that carry the project's label."""
    listed = ["docker", kind, "ls", "--quiet", "--filter", f"label=com.docker.compose.project={project}"]
    if kind == "container":
        listed.insert(3, "--all")
    return subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split()


def containers_of(project: str) -> str:
    return "\n".join(labelled("container", project))
