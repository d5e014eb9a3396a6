"""Integration suite fixtures: one copy of the stack for the whole session, always torn down."""

import os
import subprocess
import uuid

import docker
import pytest

from stack import SERVICES, Stack, free_port


def docker_problem() -> str | None:
    """What is missing for the suite to run, or None."""
    try:
        docker.from_env().ping()
    except docker.errors.DockerException as error:
        return f"no Docker engine answers ({error}); start one, or see README.md 'Prerequisites'"
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if version.returncode != 0:
        return "Docker Compose v2 is missing: `docker compose version` failed; see README.md 'Prerequisites'"
    return None


@pytest.fixture(scope="session")
def stack():
    problem = docker_problem()
    if problem:
        pytest.exit(f"integration suite cannot run: {problem}", returncode=3)
    project = os.environ.get("TEST_PROJECT", f"microstack-test-{uuid.uuid4().hex[:8]}")
    running = Stack(project, free_port())
    try:
        running.up()
    except subprocess.CalledProcessError as error:
        logs = running.compose("logs", "--no-color", "--tail", "50").stdout
        running.down()
        pytest.exit(f"the stack did not come up:\n{error.stderr}\n{logs}", returncode=3)
    yield running
    running.down()


@pytest.fixture(params=SERVICES)
def service(request) -> str:
    return request.param
