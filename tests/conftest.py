"""Integration suite fixtures: one copy of the stack for the whole session, always torn down.

STACK=swarm runs the suite's Swarm part on a Swarm stack instead of Compose (`make test-swarm`): the HTTP
contract, which holds on either, and test_swarm.py. DB=postgres runs it on PostgreSQL (stack.py).
"""

import os
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from stack import ACCOUNTS, SERVICES, Stack, free_port
from swarm_stack import SwarmStack

STACK_KIND = os.environ.get("STACK") or "compose"
# What runs on Swarm: the modules that speak to the stack over HTTP only, and the Swarm tests themselves.
SWARM_MODULES = {"test_routing.py", "test_bad_input.py", "test_flow.py", "test_orders.py", "test_swarm.py"}
if STACK_KIND == "swarm":
    collect_ignore = [path.name for path in Path(__file__).parent.glob("test_*.py") if path.name not in SWARM_MODULES]
elif STACK_KIND == "compose":
    collect_ignore = ["test_swarm.py"]
else:
    raise SystemExit(f"STACK={STACK_KIND!r}: the suite runs on compose or swarm")

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
    kind = SwarmStack if STACK_KIND == "swarm" else Stack
    running = kind(project, free_port(), environment=TEST_STACK_ENVIRONMENT)
    try:
        running.up()
    except subprocess.CalledProcessError as error:
        problem = "\n".join(error.__notes__) if STACK_KIND == "swarm" else running.logs()
        running.down()
        pytest.exit(f"the stack did not come up:\n{error.stderr}\n{problem}", returncode=3)
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
def three_replicas(stack):
    """The accounts service scaled to three replicas (on Compose or Swarm) for one test: their hostnames."""
    stack.scale(ACCOUNTS, 3)
    yield [container.attrs["Config"]["Hostname"] for container in stack.containers(ACCOUNTS)]
    stack.scale(ACCOUNTS, 1)


@pytest.fixture
def make_product(stack, staff_token):
    """Creates a product with the given stock; returns its id."""

    return lambda stock: stack.product(stock, staff_token)
