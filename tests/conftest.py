"""Integration suite fixtures: copies of the stack, each always torn down.

Read-only modules share one stack; each group of destructive modules (marked own_stack) gets its own. --groups
runs only the shared stack's modules, or only the others: `make integration` runs both halves side by side.

STACK=swarm runs the suite's Swarm part on a Swarm stack instead of Compose (`make test-swarm`): the HTTP
contract, which holds on either, and test_swarm.py. STACK=cluster runs the HTTP contract and test_cluster.py on a
three-node lab of its own (`make test-cluster`). DB=postgres runs it on PostgreSQL (stack.py).
"""

import functools
import inspect
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from project import ACCOUNTS, METRICS_PROFILE, SERVICES, ToolError
from stack import DATABASE, VARIANT_RECIPES, Stack, VariantRecipe
from swarm_stack import ClusterStack, SwarmStack

STACK_KIND = os.environ.get("STACK") or "compose"
# Every stack of this session is named PROJECT-<group>; the shared one's group is SHARED.
PROJECT = os.environ.get("TEST_PROJECT") or f"microstack-test-{uuid.uuid4().hex[:8]}"
SHARED = "shared"
# Filled once the tests are collected: the last module of each group (its stack goes down after it).
LAST_MODULE_OF_GROUP: dict[str, str] = {}
# Filled once the tests are collected: for each module, the stack the module after it needs (a group, or a
# variant's module), which comes up while it runs (StackPool.start_ahead).
NEXT_STACK: dict[str, str] = {}
# What runs on Swarm and on the lab: the modules that speak to the stack over HTTP only, and each one's own tests.
HTTP_CONTRACT = {"test_routing.py", "test_bad_input.py", "test_flow.py", "test_orders.py"}
# STACK=machine: the README's set-up on a fresh machine of its own, no stack of the suite's (test-fresh-machine).
MODULES_OF_KIND = {
    "swarm": HTTP_CONTRACT | {"test_swarm.py"},
    "cluster": HTTP_CONTRACT | {"test_cluster.py"},
    "machine": {"test_fresh_machine.py"},
}
STACK_OF_KIND = {"compose": Stack, "swarm": SwarmStack, "cluster": ClusterStack}
if STACK_KIND in MODULES_OF_KIND:
    collect_ignore = [
        path.name for path in Path(__file__).parent.glob("test_*.py") if path.name not in MODULES_OF_KIND[STACK_KIND]
    ]
elif STACK_KIND == "compose":
    collect_ignore = ["test_swarm.py", "test_cluster.py", "test_fresh_machine.py"]
    # What the databases do not change is proven once, on the default one: following "Add a service"
    # (docker-compose.yml), the gateway's own answers, its TLS and TCP transport (each starts a copy of its own),
    # the newcomer's commands, the status page (the unit tests run the case-blind usernames on PostgreSQL), the
    # docs, scaling (sockets, discovery, draining: test_deploy and test_integrity run replicas side by side),
    # what the gateway makes of a service's socket volume, and the figures Prometheus reads.
    if DATABASE != "sqlite":
        collect_ignore += [
            "test_add_a_service.py",
            "test_gateway.py",
            "test_tls.py",
            "test_transport_tcp.py",
            "test_learners_path.py",
            "test_scaling.py",
            "test_status_page.py",
            "test_docs.py",
            "test_socket_volume.py",
            "test_gateway_render.py",
            "test_metrics.py",
            "test_autoscale.py",
        ]
else:
    raise SystemExit(f"STACK={STACK_KIND!r}: the suite runs on compose, swarm, cluster or machine")

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
    # What a user's .env may change for their own stack (make scale, the status switch) is set here, so the
    # suite's stacks are the same on every machine.
    **{f"{service.upper()}_REPLICAS": "1" for service in SERVICES},
    "STATUS_PAGE": "true",
    # The services' own access log is off by default; on here, so that its lines are tested end to end.
    "ACCESS_LOG": "true",
    # No request of the suite's lives past the gateway's 10 s: so an order a crash left pending is given up after
    # 15 s, not 35, and the tests that crash orders wait that much less for it.
    "REQUEST_TIMEOUT_SECONDS": "10",
}
# The shared stack runs Prometheus too (the metrics profile), which test_metrics.py and, on Swarm, test_swarm.py
# read: no other stack pays for its scrapes. Not the lab's: its three engines already share the machine's cores.
SHARED_STACK_ENVIRONMENT = {"COMPOSE_PROFILES": METRICS_PROFILE} if STACK_KIND != "cluster" else {}


def docker_problem() -> str | None:
    """What is missing for the suite to run, or None."""
    try:
        docker.from_env().ping()
    except docker.errors.DockerException as error:
        return f"no Docker engine answers ({error}); start one, or see README.md 'Run it'"
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if version.returncode != 0:
        return "Docker Compose v2 is missing: `docker compose version` failed; see README.md 'Run it'"
    return None


class StackPool:
    """The stacks of the session, one per group of modules, each taken down after the last module of its group.

    Modules run grouped (pytest_collection_modifyitems), so one stack serves tests at a time. While a group's
    last module runs, the next group's stack comes up in the background, and the one before goes down. The
    variants the modules make of their own (TLS, TCP, a service added) run last in the shared group, each coming
    up while the module before it runs. The session ends only once every one is down.
    """

    def __init__(self):
        self.running: dict[str, Stack] = {}
        # What comes up in the background, by group or by module: the next group's stack, the variants in turn.
        self.coming_up: dict[str, Future[Stack]] = {}
        self.groups_starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="up-group")
        self.variants_starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="up-variant")
        self.going_down: list[threading.Thread] = []
        self.failures: list[str] = []

    def get(self, group: str) -> Stack:
        if group not in self.running:
            problem = docker_problem()
            if problem:
                pytest.exit(f"integration suite cannot run: {problem}", returncode=3)
            self.start(group)
            try:
                self.running[group] = self.coming_up.pop(group).result()
            except Exception as error:
                pytest.exit(f"the stack {PROJECT}-{group} did not come up:\n{error}", returncode=3)
        return self.running[group]

    def start_ahead(self, stack: str) -> None:
        """Brings up, in the background, the stack the next module needs (a group's, or a variant), if it is not
        up or coming. One module ahead, not more: a stack up early costs its idle containers' healthchecks the
        whole time it waits (about a fifth of a core a stack), on a machine whose cores the tests keep busy."""
        if stack in self.coming_up or stack in self.running:
            return
        if stack in VARIANT_RECIPES:
            if SHARED in self.running:  # the variants take its images (else the module brings its own up)
                shared = self.running[SHARED]
                make = functools.partial(VARIANT_RECIPES[stack], shared)
                self.coming_up[stack] = self.variants_starter.submit(brought_up, make, shared)
        else:
            self.start(stack)

    def start(self, group: str) -> None:
        """Brings a group's stack up in the background (once); get() takes it when its first module runs. It
        takes the images of the stack that runs last, if one does, instead of building them."""
        if group not in self.coming_up and group not in self.running:
            environment = {**TEST_STACK_ENVIRONMENT, **(SHARED_STACK_ENVIRONMENT if group == SHARED else {})}
            make = functools.partial(STACK_OF_KIND[STACK_KIND], f"{PROJECT}-{group}", environment=environment)
            images_of = next(reversed(self.running.values()), None)
            self.coming_up[group] = self.groups_starter.submit(brought_up, make, images_of)

    def variant(self, recipe: VariantRecipe) -> Iterator[Stack]:
        """A module's own variant of the stack, up (brought up now if it was not early), taken down after."""
        module = Path(inspect.getfile(recipe)).name
        shared = self.get(SHARED)  # up first: the variants come up after it (its images built), early or now
        if module not in self.coming_up:
            self.coming_up[module] = self.variants_starter.submit(brought_up, functools.partial(recipe, shared), shared)
        try:
            running = self.coming_up.pop(module).result()
        except Exception as error:
            pytest.fail(f"the variant stack of {module} did not come up:\n{error}")
        try:
            yield running
        finally:
            self.running[module] = running
            self.close(module)

    def close(self, group: str) -> None:
        running = self.running.pop(group, None)
        if running is not None:
            going_down = threading.Thread(target=self.take_down, args=(running,))
            going_down.start()
            self.going_down.append(going_down)

    def take_down(self, running: Stack) -> None:
        try:
            running.down()
        except ToolError as error:  # said when the session ends: a stack left running must not go unnoticed
            self.failures.append(f"{running.project} did not go down: {error}")

    def close_all(self) -> None:
        # What has not begun to come up never will; what is coming up is waited for, then taken down with the rest
        # (a group or module that never ran it: -x, Ctrl-C).
        for starter in (self.groups_starter, self.variants_starter):
            starter.shutdown(wait=True, cancel_futures=True)
        for name, coming in self.coming_up.items():
            if not coming.cancelled() and coming.exception() is None:
                self.running[name] = coming.result()
        self.coming_up.clear()
        for group in list(self.running):
            self.close(group)
        for going_down in self.going_down:
            going_down.join()
        if self.failures:
            raise RuntimeError("\n".join(self.failures))


def brought_up(make: Callable[[], Stack], images_of: Stack | None) -> Stack:
    """The stack make gives, up (with the images of images_of, where they are the same tree's): it takes down what
    it started if it fails, and the error reaches whoever waits for it."""
    running = make()
    running.up(images_of=images_of)
    return running


def stack_group(module: pytest.Module) -> str:
    """The stack a module runs on: the shared one, or its group's own (pytest.mark.own_stack("group"))."""
    marker = next((mark for mark in module.own_markers if mark.name == "own_stack"), None)
    return marker.args[0] if marker else SHARED


def module_of(item: pytest.Item) -> pytest.Module:
    module = item.getparent(pytest.Module)
    assert module is not None
    return module


def pytest_addoption(parser):
    parser.addoption(
        "--groups",
        choices=["shared", "own"],
        help="run only the shared stack's modules, or only those of the groups with a stack of their own (make "
        "integration runs both halves side by side: the suite waits on its stacks a third of the time)",
    )


def in_groups(item: pytest.Item, groups: str | None) -> bool:
    return groups is None or (stack_group(module_of(item)) == SHARED) == (groups == SHARED)


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected: only what runs counts
def pytest_collection_modifyitems(session, config, items):
    """Leaves out, on another database than the default, the tests marked one_database, and those of the groups
    --groups does not name; runs the shared stack's modules first, then each group's modules together, and notes
    each group's last module, after which its stack goes down."""
    groups = config.getoption("groups")
    left_out = [
        item
        for item in items
        if (DATABASE != "sqlite" and item.get_closest_marker("one_database")) or not in_groups(item, groups)
    ]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        leaving = set(left_out)
        items[:] = [item for item in items if item not in leaving]
    order = {SHARED: 0}
    for item in items:
        order.setdefault(stack_group(module_of(item)), len(order))

    def place(item: pytest.Item) -> tuple[int, bool, bool]:
        """A group's modules in file order, but those whose variant comes up in the background (which has the
        others' time to do so) and, after them, those marked runs_last."""
        module = module_of(item)
        runs_last = any(mark.name == "runs_last" for mark in module.own_markers)
        return order[stack_group(module)], runs_last, Path(str(module.path)).name in VARIANT_RECIPES

    items.sort(key=place)  # stable: file order within a group
    LAST_MODULE_OF_GROUP.clear()
    for item in items:
        LAST_MODULE_OF_GROUP[stack_group(module_of(item))] = module_of(item).nodeid
    in_order = list(dict.fromkeys(module_of(item) for item in items))
    NEXT_STACK.clear()
    for module, following in zip(in_order, in_order[1:], strict=False):
        name = Path(str(following.path)).name
        NEXT_STACK[module.nodeid] = name if name in VARIANT_RECIPES else stack_group(following)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """As a module's first test starts, the next module's stack starts coming up."""
    module = module_of(item).nodeid
    if POOLS and module in NEXT_STACK:
        POOLS[0].start_ahead(NEXT_STACK.pop(module))


# The session's pool, once a test has asked for it (pytest_runtest_setup reaches it here).
POOLS: list["StackPool"] = []


@pytest.fixture(scope="session")
def stack_pool():
    pool = StackPool()
    POOLS.append(pool)
    try:
        yield pool
    finally:
        POOLS.clear()
        pool.close_all()


@pytest.fixture(scope="module")
def stack(request, stack_pool) -> Iterator[Stack]:
    """The stack a module drives. Modules that stop, kill, pause, scale or redeploy containers are marked
    own_stack: their group gets a stack of its own, so whatever they break cannot fail another group's tests."""
    group = stack_group(request.node)
    yield stack_pool.get(group)
    if LAST_MODULE_OF_GROUP.get(group) == request.node.nodeid:
        stack_pool.close(group)


@pytest.fixture(params=SERVICES)
def service(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def staff_token(stack) -> str:
    return stack.staff_login(f"staff-{uuid.uuid4().hex[:8]}")  # one per module: a shared stack sees several


@pytest.fixture
def customer(stack) -> dict[str, str]:
    """A newly registered customer: username and Authorization header."""
    return stack.customer()


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


@pytest.fixture
def browser():
    """Headless Chromium from the distribution's packages, driven by Selenium (no download at test time)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path, browser_path = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and browser_path, "chromium and chromium-driver are missing: apt-get install chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,620"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})  # console errors, for the tests to read
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    yield driver
    driver.quit()
