"""The integration suite's harness, which the measurement tools (measure/) drive too: a copy of the stack under its
own project name and port, driven over HTTP (Stack); the loads and floods put on it (SteadyLoad, LoginFlood,
OrderingClients); the faults' helpers (a container's CPU time); the suite's clock (seconds,
wait_until, TEST_TIME_FACTOR). What the tools a learner runs share with it is in scripts/project.py.
"""

import fcntl
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

import docker
import requests
from docker.models.containers import Container

import engine
from project import (
    ACCOUNTS,
    CATALOG,
    METRICS_PROFILE,
    ORDERS,
    ROOT,
    SERVICES,
    ComposeProject,
    ToolError,
    retrying_session,
)

# Where the services keep their data, as the suite was asked to run (DB=sqlite or DB=postgres, Makefile): SQLite
# in each service's volume, or a PostgreSQL server per service, added by its Compose file.
DATABASE = os.environ.get("DB") or "sqlite"
DATABASE_FILES = {"sqlite": (), "postgres": ("docker-compose.postgres.yml",)}
if DATABASE not in DATABASE_FILES:
    raise SystemExit(f"DB={DATABASE!r}: the suite runs on {' or '.join(DATABASE_FILES)}")
# The containers of the services' databases, beside the services' own.
DATABASE_SERVICES = [f"{service}-db" for service in SERVICES] if DATABASE == "postgres" else []
# How much slower than a 2-core laptop this machine may be: every wait and every time limit in the suite is
# stretched by it (TEST_TIME_FACTOR=3 on a slow CI runner, say). Counts are never stretched.
TIME_FACTOR = float(os.environ.get("TEST_TIME_FACTOR") or 1)
# How long the suite's own requests wait for an answer unless they say otherwise: past the gateway's read timeout
# (10 s, nginx/snippets/uwsgi_proxy.inc), so a slow request fails as the gateway's 504, body and all, not as the
# client giving up first. A login or a registration (the deliberately slow hasher, 0.15 s of CPU alone) took up
# to 3.7 s with both halves of `make integration` running (load 8-16 on 2 cores), past 5 s in one CI run.
REQUEST_WAIT_SECONDS = 15


def reserve_port() -> tuple[int, IO]:
    """A free port on 127.0.0.1 and the lock that keeps it ours: another suite or tool on this machine, asking at
    the same moment, skips a port whose lock is held. Keep the lock (an open file) as long as the port is used."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        # Not a with block: the lock is held for as long as the stack lives, and released by closing it.
        lock = open(f"/tmp/microstack-port-{port}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return port, lock


def seconds(limit: float) -> float:
    """A time limit of the suite, stretched by TIME_FACTOR."""
    return limit * TIME_FACTOR


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Polls condition until it holds or timeout seconds (stretched by TIME_FACTOR) pass; returns whether it held."""
    deadline = time.monotonic() + seconds(timeout)
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def tree_copy(into: Path) -> Path:
    """A copy of this tree (no environments, caches or history), to change a service in."""
    shutil.copytree(ROOT, into, ignore=shutil.ignore_patterns(".venv", ".venv-tools", ".git", "var", "*_cache"))
    return into


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise ValueError(f"{path} has no {old!r} to change")
    path.write_text(text.replace(old, new, 1))


def add_product_note(catalog: Path) -> None:
    """The expand step of a schema change (docs/adr/0006), in a copy of the catalog's folder: its products gain
    a nullable column, which the API writes (PATCH) and reads, and the migration that adds it."""
    package = catalog / "catalog"
    stock = "    stock = models.PositiveIntegerField()\n"
    edit(package / "models.py", stock, stock + "    note = models.CharField(max_length=200, null=True)\n")
    stock_changes, stock_out = "    stock: Stock | None = None\n", "    stock: int\n"
    edit(package / "api.py", stock_changes, stock_changes + "    note: str | None = None\n")
    edit(package / "api.py", stock_out, stock_out + "    note: str | None\n")
    note_field = 'migrations.AddField("product", "note", models.CharField(max_length=200, null=True))'
    write_catalog_migration(package, "0003_product_note", note_field, imports="migrations, models")


def drop_product_updated_at(catalog: Path) -> None:
    """A release that drops a column the running one still reads, in a copy of the catalog's folder: the field
    gone from the model and the code, and the migration makemigrations writes for it (RemoveField)."""
    package = catalog / "catalog"
    edit(package / "models.py", "    updated_at = models.DateTimeField(auto_now=True)\n", "")
    edit(package / "services.py", '[*changes, "updated_at"]', "list(changes)")
    removal = 'migrations.RemoveField(model_name="product", name="updated_at")'
    write_catalog_migration(package, "0003_remove_product_updated_at", removal)


def write_catalog_migration(package: Path, name: str, operation: str, imports: str = "migrations") -> None:
    """A migration of the catalog's package after its last one in this tree (0002_demo_products), as
    makemigrations writes it: one operation."""
    (package / "migrations" / f"{name}.py").write_text(
        f"from django.db import {imports}\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("catalog", "0002_demo_products")]\n'
        f"    operations = [{operation}]\n"
    )


def timed(call: Callable):
    """(what call returned, the seconds it took)."""
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# Where a container's CPU time is kept, by cgroup version and Docker's cgroup driver: (file, field or None).
CGROUP_CPU_FILES = [
    ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage", None),  # v1, cgroupfs: nanoseconds
    ("/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage", None),  # v1, systemd
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat", "usage_usec"),  # v2, systemd
    ("/sys/fs/cgroup/docker/{id}/cpu.stat", "usage_usec"),  # v2, cgroupfs
]


def container_cpu_seconds(container: Container) -> float:
    """CPU time a running container has used so far, read from its cgroup at this instant (the stats API
    averages over a second on older engines); the stats API where the cgroup is not visible (a remote engine)."""
    for pattern, field in CGROUP_CPU_FILES:
        path = Path(pattern.format(id=container.id))
        if not path.exists():
            continue
        text = path.read_text()
        if field is None:
            return int(text) / 1e9
        usage = dict(line.split() for line in text.splitlines())
        return int(usage[field]) / 1e6
    stats = container.client.api.stats(container.id, stream=False, one_shot=True)
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def container_memory_bytes(container: Container) -> int:
    """The memory a running container holds, as `docker stats` shows it: its usage less the file cache the kernel
    can drop at once."""
    memory = container.client.api.stats(container.id, stream=False, one_shot=True)["memory_stats"]
    cache = memory.get("stats", {})
    return memory["usage"] - cache.get("total_inactive_file", cache.get("inactive_file", 0))


class Stack(ComposeProject):
    """A copy of the stack under its own project name and a port of its own, driven over HTTP."""

    def __init__(
        self,
        project: str,
        environment: dict[str, str] | None = None,
        overrides: tuple[str, ...] = (),
        database: str = DATABASE,
        root: Path = ROOT,
    ):
        super().__init__(project, environment, root)
        self.port, self.port_lock = reserve_port()
        # Prometheus's UI and API, where the metrics profile runs it (COMPOSE_PROFILES=metrics).
        self.prometheus_port, self.prometheus_port_lock = reserve_port()
        # Compose files added to docker-compose.yml (docker-compose.tls.yml, say). They are given as COMPOSE_FILE,
        # so that every command run for this stack (make deploy, say) uses the same files, as a user's .env would.
        self.database = database
        self.compose_file = ":".join(("docker-compose.yml", *DATABASE_FILES[database], *overrides))
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.http = retrying_session()  # a keep-alive connection a gateway reload closed is tried again, once

    def compose_environment(self) -> dict[str, str]:
        return {
            **super().compose_environment(),
            "GATEWAY_PORT": str(self.port),
            "PROMETHEUS_PORT": str(self.prometheus_port),
            "COMPOSE_FILE": self.compose_file,
        }

    def prometheus_query(self, query: str, at: float | None = None) -> list[dict]:
        """The result of a PromQL instant query (now, or at a Unix time) from the stack's Prometheus."""
        parameters = {"query": query, **({} if at is None else {"time": f"{at:.3f}"})}
        response = requests.get(f"http://127.0.0.1:{self.prometheus_port}/api/v1/query", params=parameters, timeout=10)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def up(self, images_of: ComposeProject | None = None) -> None:
        """Builds and starts the stack, or leaves nothing behind: a failure, a timeout or Ctrl-C while it comes up
        takes down whatever had started. images_of: a running project whose images this one takes (tagged with its
        own names) instead of building them again, if it is of the same tree (another tree's are other images)."""
        build = ["--build"]
        try:
            if images_of is not None and images_of.root == self.root:
                self.take_images_of(images_of)
                build = ["--no-build"]
            # A name or network of a project just removed may still be taken for a moment (engine.py).
            engine.patiently(
                lambda: self.compose("up", *build, "--detach", "--wait", "--wait-timeout", "180", timeout=900),
                already_so=None,
            )
        except ToolError as error:
            # Compose's reason last, after the logs: it is the line a truncated CI log must still show.
            reason = str(error).strip().splitlines()[-1]
            problem = f"{error}\n{self.logs_or_why_not()}\n{self.health_probes()}\nwhy: {reason}"
            self.down()
            raise ToolError(problem) from None
        except BaseException:
            self.down()
            raise

    def take_images_of(self, source: ComposeProject) -> None:
        for name in self.own_image_names(source.project):
            self.docker.images.get(name).tag(self.image_of(name.removeprefix(f"{source.project}-")), "latest")

    def down(self) -> None:
        """Removes the stack, its volumes and its images' names: an image another stack took keeps that stack's
        name (Compose's --rmi removes images by their build's label, so it leaves one with several names)."""
        try:
            self.take_down("--rmi", "local", "--timeout", "10", volumes=True)
            self.remove_own_image_names()
        except docker.errors.APIError as error:
            raise ToolError(f"the images of {self.project} were not removed: {error}") from None
        finally:
            self.port_lock.close()
            self.prometheus_port_lock.close()

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "50").stdout

    def health_probes(self) -> str:
        """The engine's last health probes (start, end, exit code, output) of each container not healthy."""
        lines = []
        try:
            containers = self.containers(all=True)
        except docker.errors.DockerException as error:
            return f"(no health probes: {error})"
        for container in containers:
            health = container.attrs["State"].get("Health") or {}
            if health.get("Status", "healthy") == "healthy":
                continue
            lines.append(f"{container.name}: {health['Status']}, started {container.attrs['State']['StartedAt']}")
            for probe in health.get("Log", []):
                output = " ".join(probe["Output"].split())[:200]
                lines.append(f"  probe {probe['Start']} .. {probe['End']}: exit {probe['ExitCode']} {output}")
        return "\n".join(lines)

    def logs_or_why_not(self) -> str:
        try:
            return self.logs()
        except ToolError as error:
            return f"(no logs: {error})"

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", REQUEST_WAIT_SECONDS)
        return self.http.get(self.base_url + path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", REQUEST_WAIT_SECONDS)
        return self.http.request(method, self.base_url + path, **kwargs)

    def post(self, path: str, body, **kwargs) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def customer(self, prefix: str = "user") -> dict[str, str]:
        """A newly registered user: its username and its Authorization header."""
        username, password = f"{prefix}-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
        response = self.post(f"/api/{ACCOUNTS}/register", {"username": username, "password": password})
        assert response.status_code == 201, response.text
        return {"username": username, "Authorization": f"Bearer {self.login(username, password)}"}

    def login(self, username: str, password: str) -> str:
        response = self.post(f"/api/{ACCOUNTS}/login", {"username": username, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def staff_login(self, username: str = "staff") -> str:
        """A token of a new staff user, made with Django's own createsuperuser inside the accounts container."""
        password = os.urandom(16).hex()
        command = ["django-admin", "createsuperuser", "--noinput", "--username", username]
        result = self.containers(ACCOUNTS)[0].exec_run(  # any replica: they share one database
            [*command, "--email", "staff@example.com"], environment={"DJANGO_SUPERUSER_PASSWORD": password}
        )
        assert result.exit_code == 0, result.output
        return self.login(username, password)

    def product(self, stock: int, staff_token: str) -> int:
        """A new product with this much stock; returns its id."""
        body = {"name": f"product-{os.urandom(6).hex()}", "price": "9.90", "stock": stock}
        response = self.post(f"/api/{CATALOG}/products", body, headers={"Authorization": f"Bearer {staff_token}"})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def stock_of(self, product_id: int) -> int:
        return self.get(f"/api/{CATALOG}/products/{product_id}").json()["stock"]

    def scale(self, service: str, replicas: int) -> None:
        """Runs this many replicas of service, leaving every other container as it is."""
        self.compose("up", "--detach", "--no-recreate", "--wait", "--scale", f"{service}={replicas}", timeout=300)

    def database_networks(self, service: str) -> list[str]:
        """The networks service joins only to reach its own database (docker-compose.postgres.yml)."""
        return [f"{self.project}_{service}-database"] if self.database == "postgres" else []

    def served_by(self, path: str) -> str:
        return self.get(path).headers["X-Served-By"]

    def status_page(self) -> dict:
        """What the status page shows (/status/data.json)."""
        response = self.get("/status/data.json")
        assert response.status_code == 200, response.text
        return response.json()

    def shown_on_status_page(self, service: str) -> dict[str, dict]:
        """The replicas the status page shows for service, by instance (the container's hostname)."""
        (shown,) = [entry for entry in self.status_page()["services"] if entry["name"] == service]
        return {replica["instance"]: replica for replica in shown["replicas"]}

    def replicas_answering(self, path: str, expected: int, timeout: float, interval: float = 0.01) -> set[str]:
        """The replicas (X-Served-By) that answered path, asked until expected of them have, or timeout passes."""
        seen: set[str] = set()

        def all_seen() -> bool:
            seen.add(self.served_by(path))
            return len(seen) >= expected

        wait_until(all_seen, timeout=timeout, interval=interval)
        return seen

    def is_healthy(self, service: str) -> bool:
        """Whether Docker sees every container of service healthy (a test that paused one must wait for this)."""
        containers = self.containers(service)
        for container in containers:
            container.reload()
        return bool(containers) and all(c.attrs["State"]["Health"]["Status"] == "healthy" for c in containers)

    def outbox_drained(self) -> bool:
        """The orders outbox holds no undelivered message. A message is marked delivered only after its receiver
        answered, so once this holds, every delivery there will be (a duplicate included) has landed."""
        response = self.get(f"/api/{ORDERS}/health/")
        return response.ok and response.json()["outbox"]["waiting"] == 0

    def uwsgi_threads(self, service: str) -> list[Path]:
        """The /proc folders (on the host) of every thread of the replica's uWSGI processes."""
        top = self.container(service).top()
        pid, command = top["Titles"].index("PID"), top["Titles"].index("CMD")
        pids = [row[pid] for row in top["Processes"] if "uwsgi" in row[command]]
        return [task for process in pids for task in Path(f"/proc/{process}/task").iterdir()]

    @staticmethod
    def running(threads: list[Path]) -> int:
        """How many of these threads are on a CPU now (state R): an idle uWSGI thread waits, one serving a
        CPU-bound request (a password hash) runs."""
        states = []
        for thread in threads:
            try:
                states.append((thread / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:  # the thread ended meanwhile
                continue
        return states.count("R")

    def answers(self, path: str, status: int = 200) -> bool:
        try:
            return self.get(path, timeout=2).status_code == status
        except requests.RequestException:
            return False


# A stack of its own variant that a module tests (TLS, TCP, a service added): the module names how to make it, and
# the suite brings each up in the background, one after another, while the shared stack's modules run
# (conftest.py), so the module finds it up. Keyed by the module's file name.
VariantRecipe = Callable[["Stack"], "Stack"]
VARIANT_RECIPES: dict[str, VariantRecipe] = {}


def variant_stack(make: VariantRecipe) -> VariantRecipe:
    """Registers a module's recipe for its own stack: given the shared stack (up, so its images are built), it
    returns the variant's stack, not yet started."""
    VARIANT_RECIPES[Path(inspect.getfile(make)).name] = make
    return make


class SteadyLoad:
    """Sequential requests to one path from one thread until stopped: at most max_requests and max_seconds,
    with a short pause between requests, each retried once as browsers do unless retry=False. outcomes counts
    each status code, or the exception's name; served_by, who answered (X-Served-By, None where no replica
    said).

    retry=False is a client that sends each request once, each on a connection of its own: a keep-alive
    connection that nginx's old workers close as the request goes out is lost even by a perfect roll, and HTTP
    leaves that GET to the client to send again (docs/scaling.md; make drill counts such losses). Everything
    else, a refused connection or an error status, is a failure of the roll."""

    def __init__(
        self, stack: "Stack", path: str, max_requests: int = 5000, max_seconds: float = 60, retry: bool = True
    ):
        self.stack, self.path, self.retry = stack, path, retry
        self.max_requests, self.deadline = max_requests, time.monotonic() + max_seconds
        self.outcomes: Counter = Counter()
        self.served_by: Counter = Counter()
        self.failed_at: list[float] = []  # when each failed request was sent (time.monotonic())
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        # One per thread: a Session is not meant to be shared across threads.
        session = retrying_session() if self.retry else requests.Session()
        if not self.retry:
            session.headers["Connection"] = "close"
        url = self.stack.base_url + self.path
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            if sum(self.outcomes.values()) >= self.max_requests:
                break
            sent = time.monotonic()
            try:
                response = session.get(url, timeout=15)
                outcome: int | str = response.status_code
                self.served_by[response.headers.get("X-Served-By")] += 1
            except Exception as error:  # a refused or reset connection is a lost request too
                outcome = type(error).__name__
            self.outcomes[outcome] += 1
            if outcome != 200:
                self.failed_at.append(sent)
            time.sleep(0.005)  # a steady client's pace, not a wait

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join()

    @property
    def failed(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome != 200)

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failing_seconds(self) -> float:
        """From the first failed request to the last: how long the path failed (0 if it never did)."""
        return self.failed_at[-1] - self.failed_at[0] if self.failed_at else 0.0


class SteadyLoads:
    """A SteadyLoad on each of several paths at once, started and stopped together."""

    def __init__(self, stack: "Stack", paths: list[str], max_seconds: float = 60, max_requests: int = 50_000):
        self.loads = [SteadyLoad(stack, path, max_requests, max_seconds) for path in paths]

    def __enter__(self):
        for load in self.loads:
            load.thread.start()
        return self

    def __exit__(self, *exc_info):
        for load in self.loads:
            load.__exit__()

    @property
    def failed(self) -> int:
        return sum(load.failed for load in self.loads)

    @property
    def sent(self) -> int:
        return sum(load.sent for load in self.loads)

    @property
    def failing_seconds(self) -> float:
        """The longest any path failed, from its first failed request to its last."""
        return max(load.failing_seconds for load in self.loads)

    def outcomes(self) -> dict[str, dict]:
        return {load.path: dict(load.outcomes) for load in self.loads}

    def all_outcomes(self) -> Counter:
        """Every path's outcomes, counted together."""
        return sum((load.outcomes for load in self.loads), start=Counter())


# Three 7,000-byte headers (21 KB): what used to pass nginx and reset uWSGI, marking every replica failed.
OVERSIZED_HEADERS = {f"X-Filler-{index}": "a" * 7000 for index in range(3)}

# What LoginFlood runs: threads posting logins with made-up names (a password hash apiece), each at most every
# 0.2 s, at most 200 times, for at most argv[2] seconds, to the path argv[3]; it prints the count of each outcome
# as JSON.
LOGIN_FLOOD_SCRIPT = """
import json, sys, threading, time, uuid
from collections import Counter
import requests

threads, deadline, path = int(sys.argv[1]), time.monotonic() + float(sys.argv[2]), sys.argv[3]
outcomes, lock = Counter(), threading.Lock()

def flood():
    session = requests.Session()
    for _ in range(200):
        if time.monotonic() > deadline:
            return
        credentials = {"username": f"flood-{uuid.uuid4().hex[:12]}", "password": "not the password"}
        try:
            outcome = session.post("http://nginx:8080" + path, json=credentials,
                                   headers={"Host": "localhost"}, timeout=10).status_code
        except requests.RequestException as error:
            outcome = type(error).__name__
        with lock:
            outcomes[str(outcome)] += 1
        time.sleep(0.2)  # each flooder's pace

workers = [threading.Thread(target=flood) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(json.dumps(outcomes))
"""


# Run inside a container: the statuses and bodies of GETs of the gateway's stats resources through a unix socket.
ASK_THE_GATEWAY_SCRIPT = """
import json, sys
from urllib.parse import quote
import requests
from requests_unixsocket import UnixAdapter
socket_path, paths = sys.argv[1], json.loads(sys.argv[2])
session = requests.Session()
session.mount("http+unix://", UnixAdapter())
base = "http+unix://" + quote(socket_path, safe="")
answers = {}
for path in paths:
    response = session.get(base + path, headers={"Host": "localhost"}, timeout=5)
    answers[path] = [response.status_code, response.text]
print(json.dumps(answers))
"""


def ask_the_gateway(container: Container, socket_path: str, paths: list[str]) -> dict[str, list]:
    """What the gateway answers a container that GETs paths on one of its unix sockets: {path: [status, body]}."""
    result = container.exec_run(["python", "-c", ASK_THE_GATEWAY_SCRIPT, socket_path, json.dumps(paths)])
    if result.exit_code != 0:
        raise ToolError(result.output.decode())
    return json.loads(result.output.decode().strip().splitlines()[-1])


def stats_paths(stack: "Stack") -> list[str]:
    """The status plane's resources: the upstreams, nginx's counters, and each service's first replica's stats."""
    instances = [(service, stack.container(service).attrs["Config"]["Hostname"]) for service in SERVICES]
    return [
        "/_gateway/upstreams",
        "/_gateway/stub_status",
        *(f"/_gateway/stats/{service}/{instance}" for service, instance in instances),
    ]


# Run in the orders service's container: one reservation call signed by orders itself, sent twice as it is, then
# its token on another reservation, then a token orders signs to live ten years. Prints the statuses.
REPLAY_A_TOKEN_SCRIPT = """
import json, time, uuid
import jwt, requests
from django.conf import settings
from servicekit import identity
from servicekit.http import connect_retrying_session

session = connect_retrying_session()
def send(path, body, token):
    url = settings.GATEWAY_INTERNAL_URL + path
    headers = {"Content-Type": "application/json", "X-Service-Token": token}
    return session.put(url, data=body, headers=headers, timeout=5).status_code

body = json.dumps({"product_id": PRODUCT_ID, "quantity": 1})
path = f"/api/service2/internal/reservations/{uuid.uuid4()}"
token = identity.service_token("service2", "PUT", path, body)
statuses = {"first": send(path, body, token), "replayed": send(path, body, token)}
statuses["elsewhere"] = send(f"/api/service2/internal/reservations/{uuid.uuid4()}", body, token)
now = int(time.time())
claims = jwt.decode(identity.service_token("service2", "PUT", path, body), options={"verify_signature": False})
claims.update(iat=now, exp=now + 10 * 365 * 86400, jti=uuid.uuid4().hex)
statuses["ten_years"] = send(path, body, jwt.encode(claims, identity.private_key(), algorithm="EdDSA"))
print(json.dumps(statuses))
"""


def replay_a_token(stack: "Stack", product_id: int) -> dict[str, int]:
    """From inside orders: a reservation, sent twice with one token, that token on another path, and a token
    signed to live ten years; the status of each."""
    script = REPLAY_A_TOKEN_SCRIPT.replace("PRODUCT_ID", str(product_id))
    result = stack.container(ORDERS).exec_run(["django-admin", "shell", "-c", script])
    if result.exit_code != 0:
        raise ToolError(result.output.decode())
    return json.loads(result.output.decode().strip().splitlines()[-1])


class LoginFlood:
    """A login flood from a client of its own: a container on the gateway's public network, so it has an address
    of its own (every client on the host shares one, Docker's proxy's) and meets the per-client limits alone.
    Bounded: threads x 200 requests at most, for at most seconds. outcomes counts each status, once it ends."""

    def __init__(self, stack: "Stack", threads: int = 60, seconds: float = 15, path: str = f"/api/{ACCOUNTS}/login"):
        self.stack, self.threads, self.seconds, self.path = stack, threads, seconds, path
        self.outcomes: Counter = Counter()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        output = self.stack.docker.containers.run(
            f"{self.stack.project}-{ACCOUNTS}",
            entrypoint=["python", "-c", LOGIN_FLOOD_SCRIPT, str(self.threads), str(self.seconds), self.path],
            network=f"{self.stack.project}_edge",
            labels={"com.docker.compose.project": self.stack.project},
            remove=True,
        )
        self.outcomes.update(json.loads(output.decode().strip().splitlines()[-1]))

    def running(self) -> bool:
        return self.thread.is_alive()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.thread.join(timeout=self.seconds + 60)


# An order left by a crash is given up after ORDER_PENDING_SECONDS (5 s past a request's longest life: 15 s in the
# suite's stacks, 35 s by default; docs/architecture.md "How it works"); its release is delivered within seconds
# after that.
LEAK_BOUND_SECONDS = 60


def manage(stack, service: str, *command: str) -> dict:
    result = stack.containers(service)[0].exec_run(["django-admin", *command])  # any replica: one database
    assert result.exit_code == 0, result.output.decode()
    return json.loads(result.output.decode().strip().splitlines()[-1])


def leaks(stack, product_id: int, initial_stock: int) -> list[str]:
    """What breaks the saga's invariant for one product, as sentences; empty when it holds."""
    catalog = manage(stack, CATALOG, "stock_report")
    orders = manage(stack, ORDERS, "order_report")["orders"]
    product = catalog["products"][str(product_id)]
    held = {rid: r for rid, r in catalog["held"].items() if r["product_id"] == product_id}
    placed = {oid: o for oid, o in orders.items() if o["product_id"] == product_id and o["status"] == "placed"}
    pending = [oid for oid, o in orders.items() if o["product_id"] == product_id and o["status"] == "pending"]
    problems = []
    if product["stock"] + product["held"] != initial_stock:
        problems.append(f"stock {product['stock']} + held {product['held']} != {initial_stock}")
    problems += [f"reservation {rid} belongs to no placed order" for rid in held if rid not in placed]
    problems += [f"placed order {oid} holds no reservation" for oid in placed if oid not in held]
    problems += [f"order {oid} is still pending" for oid in pending]
    return problems


def place_until_answered(
    stack, auth: dict, product_id: int, key: str, deadline: float, quantity: int = 1
) -> requests.Response | None:
    """A client that sends its order again, with its Idempotency-Key, until the order is made (bounded by
    deadline): a failure of the stack, or the order still in progress (409), is retried."""
    headers = {**auth, "Idempotency-Key": key}
    body = {"product_id": product_id, "quantity": quantity}
    while time.monotonic() < deadline:
        try:
            response = stack.post(f"/api/{ORDERS}/orders", body, headers=headers)
            if response.status_code in (200, 201):
                return response
        except requests.RequestException:
            pass
        time.sleep(0.5)  # a client's pause before it sends the order again
    return None


def assert_each_client_holds_exactly_one_order(stack, auth: dict, answers: list) -> None:
    assert all(answer is not None for answer in answers)
    order_ids = [answer.json()["id"] for answer in answers]
    assert len(set(order_ids)) == len(order_ids)
    listed = [order["id"] for order in stack.get(f"/api/{ORDERS}/orders", headers=auth).json()]
    assert sorted(listed) == sorted(order_ids)


class Clients:
    """Client threads, each running run(its number) from the with block's start; at its end they are told to stop
    (stopped) and waited for. A subclass's run bounds itself in count and time."""

    def __init__(self, clients: int):
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(clients)]

    def run(self, client: int) -> None:
        raise NotImplementedError

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        for thread in self.threads:
            thread.join()


# Accounts as one worker of one thread, Prometheus on: a stack whose accounts a few clients' logins saturate, for
# make autoscale (tests/test_autoscale.py, make drill-autoscale). The logins come from this host (one client to
# the gateway): its login limit lifted for them.
AUTOSCALED_ACCOUNTS = {
    "COMPOSE_PROFILES": METRICS_PROFILE,
    "SERVICE1_PROCESSES": "1",
    "SERVICE1_THREADS": "1",
    "GATEWAY_LOGIN_RATE": "100r/s",
    "GATEWAY_LOGIN_BURST": "200",
}


class Autoscaler:
    """`make autoscale` run on a stack's accounts (scripts/autoscale.py), each line it says kept with the moment it
    was said; echo prints them as they come."""

    def __init__(self, stack: "Stack", minimum: int, maximum: int, *policy: str, echo: bool = False):
        command = [sys.executable, str(stack.root / "scripts" / "autoscale.py"), ACCOUNTS,
                   "--min", str(minimum), "--max", str(maximum), *policy]  # fmt: skip
        environment = {**stack.compose_environment(), "COMPOSE_PROJECT_NAME": stack.project}
        self.process = subprocess.Popen(
            command, cwd=stack.root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.echo = echo
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self.read)
        self.reader.start()

    def read(self) -> None:
        for line in self.process.stdout or []:
            if self.echo:
                print(line, end="", flush=True)
            self.lines.append((time.time(), line.strip()))

    def first(self, text: str, after: float = 0.0) -> tuple[float, str] | None:
        return next(((at, line) for at, line in self.lines if text in line and at >= after), None)

    def said(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.reader.join(timeout=60)


class Logins(Clients):
    """Clients logging in one after another, as fast as they are answered (each login on a connection of its own),
    for at most max_seconds: a closed loop, so the load never queues more logins than there are clients. Each
    answer is kept: when it was sent, how long it took, and what it was."""

    def __init__(self, stack: "Stack", credentials: dict, clients: int, max_seconds: float):
        self.url, self.credentials = f"{stack.base_url}/api/{ACCOUNTS}/login", credentials
        self.max_seconds = max_seconds
        self.outcomes: Counter = Counter()
        self.served_by: Counter = Counter()
        self.answers: list[tuple[float, float, int | str]] = []  # (time.time() sent, seconds, status or error)
        super().__init__(clients)

    def run(self, client: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self.stopped.is_set() and time.monotonic() < deadline:
            sent, started = time.time(), time.monotonic()
            try:
                response = requests.post(self.url, json=self.credentials, headers={"Connection": "close"}, timeout=30)
                outcome: int | str = response.status_code
                self.served_by[response.headers.get("X-Served-By")] += 1
            except requests.RequestException as error:
                outcome = type(error).__name__
            self.outcomes[outcome] += 1
            self.answers.append((sent, time.monotonic() - started, outcome))


class OrderingClients(Clients):
    """Clients that each place orders one after another, each with an Idempotency-Key of its own, sending an order
    again until it is made, until stopped; then each finishes the order it is on. Bounded: per_client orders
    each, and a deadline. made holds every order made, as the client saw it (one per key)."""

    def __init__(self, stack: "Stack", auth: dict, product_id: int, clients: int = 30, per_client: int = 20):
        self.stack, self.auth, self.product_id = stack, auth, product_id
        self.per_client = per_client
        self.deadline = time.monotonic() + 120
        self.made: list[requests.Response | None] = []
        self.lock = threading.Lock()
        super().__init__(clients)

    def run(self, client: int) -> None:
        for order in range(self.per_client):
            if self.stopped.is_set():
                return
            key = f"client-{client}-order-{order}"
            answer = place_until_answered(self.stack, self.auth, self.product_id, key, self.deadline)
            with self.lock:
                self.made.append(answer)
