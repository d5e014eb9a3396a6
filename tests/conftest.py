"""Integration suite fixtures: copies of the stack, each always torn down.

Read-only modules share one stack; each group of destructive modules (marked own_stack) gets its own.

STACK=swarm runs the suite's Swarm part on a Swarm stack instead of Compose (`make test-swarm`): the HTTP
contract, which holds on either, and test_swarm.py. STACK=cluster runs the HTTP contract and test_cluster.py on a
three-node lab of its own (`make test-cluster`). DB=postgres runs it on PostgreSQL (stack.py).
"""

import inspect
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from project import ACCOUNTS, SERVICES, ToolError
from stack import DATABASE, VARIANT_RECIPES, Stack, VariantRecipe
from swarm_stack import ClusterStack, SwarmStack

STACK_KIND = os.environ.get("STACK") or "compose"
# Every stack of this session is named PROJECT-<group>; the shared one's group is SHARED.
PROJECT = os.environ.get("TEST_PROJECT") or f"microstack-test-{uuid.uuid4().hex[:8]}"
SHARED = "shared"
# Filled once the tests are collected: the groups in the order they run, and the last module of each (its stack
# goes down after it).
GROUP_ORDER: list[str] = []
LAST_MODULE_OF_GROUP: dict[str, str] = {}
# The modules that run, in order, whose own variant of the stack (stack.variant_stack) comes up early.
VARIANT_MODULES: list[str] = []
# What runs on Swarm and on the lab: the modules that speak to the stack over HTTP only, and each one's own tests.
HTTP_CONTRACT = {"test_routing.py", "test_bad_input.py", "test_flow.py", "test_orders.py"}
MODULES_OF_KIND = {"swarm": HTTP_CONTRACT | {"test_swarm.py"}, "cluster": HTTP_CONTRACT | {"test_cluster.py"}}
STACK_OF_KIND = {"compose": Stack, "swarm": SwarmStack, "cluster": ClusterStack}
if STACK_KIND in MODULES_OF_KIND:
    collect_ignore = [
        path.name for path in Path(__file__).parent.glob("test_*.py") if path.name not in MODULES_OF_KIND[STACK_KIND]
    ]
elif STACK_KIND == "compose":
    collect_ignore = ["test_swarm.py", "test_cluster.py"]
    # What the databases do not change is proven once, on the default one: following "Add a service"
    # (docker-compose.yml), the gateway's own answers, its TLS and TCP transport (each starts a copy of its own),
    # the newcomer's commands, the status page (the unit tests run the case-blind usernames on PostgreSQL), the
    # docs, and scaling (sockets, discovery, draining: test_deploy and test_integrity run replicas side by side).
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
        ]
else:
    raise SystemExit(f"STACK={STACK_KIND!r}: the suite runs on compose, swarm or cluster")

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
}


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
    modules run, the next group's stack comes up in the background, and the one before goes down: no group but
    the first waits for its stack. The session ends only once every one is down.
    """

    def __init__(self):
        self.running: dict[str, Stack] = {}
        self.coming_up: dict[str, tuple[threading.Thread, list]] = {}
        self.variants: dict[str, tuple[threading.Event, list]] = {}  # module: (up or failed, [stack or error])
        self.variants_coming_up: threading.Thread | None = None
        self.closing = threading.Event()  # the session ends: no more variants come up
        self.going_down: list[threading.Thread] = []
        self.failures: list[str] = []

    def get(self, group: str) -> Stack:
        if group not in self.running:
            problem = docker_problem()
            if problem:
                pytest.exit(f"integration suite cannot run: {problem}", returncode=3)
            self.start(group)
            thread, outcome = self.coming_up.pop(group)
            thread.join()
            if not isinstance(outcome[0], Stack):
                pytest.exit(f"the stack {PROJECT}-{group} did not come up:\n{outcome[0]}", returncode=3)
            self.running[group] = outcome[0]
            following = GROUP_ORDER[GROUP_ORDER.index(group) + 1 :] if group in GROUP_ORDER else []
            if following:
                self.start(following[0])
            if group == SHARED:
                self.start_variants(outcome[0])
        return self.running[group]

    def start_variants(self, shared: Stack) -> None:
        """Brings up, one after another in a thread of their own, the variants of the modules that will run."""
        for module in VARIANT_MODULES:
            self.variants[module] = (threading.Event(), [])

        def bring_up() -> None:
            for module in VARIANT_MODULES:
                done, outcome = self.variants[module]
                if self.closing.is_set():
                    outcome.append(RuntimeError("the session ended first"))
                    done.set()
                    continue
                try:
                    running = VARIANT_RECIPES[module](shared)
                    running.up(images_of=shared if running.root == shared.root else None)
                except BaseException as error:
                    outcome.append(error)
                else:
                    outcome.append(running)
                finally:
                    done.set()

        self.variants_coming_up = threading.Thread(target=bring_up, name="up-variants")
        self.variants_coming_up.start()

    def variant(self, recipe: VariantRecipe) -> Iterator[Stack]:
        """A module's own variant of the stack, up (brought up now if it was not early), taken down after."""
        module = Path(inspect.getfile(recipe)).name
        shared = self.get(SHARED)  # up first: the variants come up after it (its images built), early or now
        if module in self.variants:
            done, outcome = self.variants.pop(module)
            done.wait()
        else:
            running = recipe(shared)
            running.up()
            outcome = [running]
        if not isinstance(outcome[0], Stack):
            pytest.fail(f"the variant stack of {module} did not come up:\n{outcome[0]}")
        try:
            yield outcome[0]
        finally:
            self.running[module] = outcome[0]
            self.close(module)

    def start(self, group: str) -> None:
        """Brings a group's stack up in a thread of its own (once); get() takes it when its first module runs. It
        takes the images of a stack that runs, if one does (Compose: the same tree's), instead of building."""
        if group in self.coming_up or group in self.running:
            return
        outcome: list = []  # the stack, or what stopped it (said by get(), in the session's own thread)
        images_of = next(reversed(self.running.values()), None) if STACK_KIND == "compose" else None

        def bring_up() -> None:
            running = STACK_OF_KIND[STACK_KIND](f"{PROJECT}-{group}", environment=TEST_STACK_ENVIRONMENT)
            try:
                if images_of is None:
                    running.up()  # takes down what it started if it fails
                else:
                    running.up(images_of=images_of)
            except BaseException as error:
                outcome.append(error)
            else:
                outcome.append(running)

        thread = threading.Thread(target=bring_up, name=f"up-{group}")
        thread.start()
        self.coming_up[group] = (thread, outcome)

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
        for group, (thread, outcome) in list(self.coming_up.items()):  # up for a group that never ran (-x, Ctrl-C)
            thread.join()
            if outcome and isinstance(outcome[0], Stack):
                self.running[group] = outcome[0]
        self.coming_up.clear()
        self.closing.set()
        if self.variants_coming_up is not None:
            self.variants_coming_up.join()
        for module, (_, outcome) in self.variants.items():  # up for a module that never asked for it
            if outcome and isinstance(outcome[0], Stack):
                self.running[module] = outcome[0]
        self.variants.clear()
        for group in list(self.running):
            self.close(group)
        for going_down in self.going_down:
            going_down.join()
        if self.failures:
            raise RuntimeError("\n".join(self.failures))


def stack_group(module: pytest.Module) -> str:
    """The stack a module runs on: the shared one, or its group's own (pytest.mark.own_stack("group"))."""
    marker = next((mark for mark in module.own_markers if mark.name == "own_stack"), None)
    return marker.args[0] if marker else SHARED


def module_of(item: pytest.Item) -> pytest.Module:
    module = item.getparent(pytest.Module)
    assert module is not None
    return module


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected: only what runs counts
def pytest_collection_modifyitems(session, config, items):
    """Leaves out, on another database than the default, the tests marked one_database; runs the shared stack's
    modules first, then each group's modules together, and notes each group's last module, after which its stack
    goes down."""
    if DATABASE != "sqlite":
        once = [item for item in items if item.get_closest_marker("one_database")]
        if once:
            config.hook.pytest_deselected(items=once)
            items[:] = [item for item in items if not item.get_closest_marker("one_database")]
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
    GROUP_ORDER[:] = list(dict.fromkeys(stack_group(module_of(item)) for item in items))
    modules = dict.fromkeys(Path(str(module_of(item).path)).name for item in items)
    VARIANT_MODULES[:] = [module for module in modules if module in VARIANT_RECIPES]
    LAST_MODULE_OF_GROUP.clear()
    for item in items:
        LAST_MODULE_OF_GROUP[stack_group(module_of(item))] = module_of(item).nodeid


@pytest.fixture(scope="session")
def stack_pool():
    pool = StackPool()
    try:
        yield pool
    finally:
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
