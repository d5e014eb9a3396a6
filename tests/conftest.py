"""Integration suite fixtures: one copy of the stack for the whole session, always torn down."""

import os
import subprocess
import uuid

import docker
import pytest

from stack import ACCOUNTS, SERVICES, Stack, free_port

# Worker settings that differ per service and from the defaults, so the suite sees each service get its own.
# The suite registers and logs in from one address far faster than a person: a larger burst of those, at the
# default rate (the login flood runs from an address of its own, and meets that rate).
TEST_STACK_ENVIRONMENT = {
    "SERVICE1_PROCESSES": "3",
    "SERVICE1_THREADS": "2",
    "GATEWAY_LOGIN_BURST": "60",
    "SERVICE4_PROCESSES": "3",
    "SERVICE4_THREADS": "3",
    "SERVICE4_CHEAPER": "1",
}


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
    running = Stack(project, free_port(), environment=TEST_STACK_ENVIRONMENT)
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


@pytest.fixture(scope="session")
def staff_token(stack) -> str:
    return stack.staff_login()


@pytest.fixture
def customer(stack) -> dict[str, str]:
    """A newly registered customer: username and Authorization header."""
    username, password = f"user-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    assert stack.post(f"/api/{ACCOUNTS}/register", {"username": username, "password": password}).status_code == 201
    return {"username": username, "Authorization": f"Bearer {stack.login(username, password)}"}


@pytest.fixture
def make_product(stack, staff_token):
    """Creates a product with the given stock; returns its id."""

    return lambda stock: stack.product(stock, staff_token)
