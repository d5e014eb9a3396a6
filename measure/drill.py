"""The fault drill (`make drill`): a rolling deploy under load, then one fault at a time, with the figures.

It starts its own copy of the stack, keeps a steady load on every route while it rolls the catalog to a new
image, and reports how many requests each route sent and lost. Then it injects the faults the stack promises to
survive and reports, for each, how long the fault took to show at the gateway, what the gateway answered, and
how long recovery took; then orders killed mid-order, and one hostile client. Every figure is measured in this
run. It prints the report as it goes and writes it to --out (docs/drill.md). A drill, not a test: it asserts
nothing.
"""

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from bench import rate_script, run_wrk
from load import send
from preflight import userland_proxy_note

# Run as a program, from this tree or a copy of it: the tools' shared module (scripts/), the suite's
# harness (tests/support/), the Swarm and lab tools.
sys.path[:0] = [
    str(Path(__file__).resolve().parents[1] / folder) for folder in ("scripts", "tests/support", "swarm", "lab")
]

import engine
from backups import TAMPERINGS, tamper
from project import ACCOUNTS, CATALOG, GATEWAY, NOTIFICATIONS, ORDERS, ROOT, SERVICES
from reports import report_preamble
from stack import (
    LEAK_BOUND_SECONDS,
    OVERSIZED_HEADERS,
    LoginFlood,
    OrderingClients,
    Stack,
    SteadyLoad,
    add_product_note,
    ask_the_gateway,
    drop_product_updated_at,
    leaks,
    replay_a_token,
    stats_paths,
    timed,
    tree_copy,
)

POLL_SECONDS = 0.05
Observed = TypeVar("Observed")


def watch(probe: Callable[[], Observed], until: Callable[[Observed], bool], timeout: float):
    """Probes until what it observes passes until(): (seconds it took, what was observed), or (None, the last
    observation) if that did not happen within timeout."""
    started = time.monotonic()
    observed = probe()
    while not until(observed):
        if time.monotonic() - started > timeout:
            return None, observed
        time.sleep(POLL_SECONDS)
        observed = probe()
    return time.monotonic() - started, observed


def seconds(value: float | None) -> str:
    return "not within the limit" if value is None else f"{value:.2f} s"


def counts(outcomes: Counter) -> str:
    """{200: 98, 503: 2} as "98 × 200, 2 × 503"."""
    return ", ".join(f"{count} × {outcome}" for outcome, count in outcomes.most_common())


class Report:
    """The drill's report: printed line by line as the drill goes, and kept to be written as one file."""

    def __init__(self):
        self.lines: list[str] = []

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def table(self, *header: str, text_columns: tuple[int, ...] = (0,)) -> None:
        """A table's header: text columns left-aligned, figures right-aligned."""
        self.say("| " + " | ".join(header) + " |")
        self.say("| " + " | ".join("---" if n in text_columns else "---:" for n in range(len(header))) + " |")

    def row(self, *cells: object) -> None:
        self.say("| " + " | ".join(str(cell) for cell in cells) + " |")


BACKUP_TOOL = [sys.executable, str(ROOT / "scripts" / "backup.py")]  # make backup, make restore

# The drill's parts, in the order they run (make drill ONLY=paused-dependency runs one).
PARTS = [
    "rollout",
    "reloads",
    "schema-change",
    "faults",
    "paused-dependency",
    "worker-or-replica",
    "crash-during-orders",
    "backup-restore",
    "abuse",
    "trust",
    "status-accuracy",
    "connection-flood",
]


class Drill:
    def __init__(self, report: Report, parts: list[str]):
        self.stack = Stack(f"microstack-drill-{uuid.uuid4().hex[:8]}")
        self.report = report
        self.parts = parts

    def outcome(self, path: str, method: str = "GET", **kwargs) -> str:
        """The status the gateway answered, or the name of the error when it answered nothing."""
        try:
            return str(self.stack.request(method, path, timeout=20, **kwargs).status_code)
        except Exception as error:  # what a client sees of a gateway that is down: refused, reset
            return type(error).__name__

    def health(self, service: str) -> Callable[[], str]:
        return lambda: self.outcome(f"/api/{service}/health/")

    def deploy_catalog(self) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ROOT / "scripts" / "deploy.py"), CATALOG, "--no-build"]
        return subprocess.run(
            [*command, "--project", self.stack.project],
            env=self.stack.compose_environment(),
            capture_output=True,
            text=True,
        )

    def rollout(self) -> None:
        self.report.say("## A rolling deploy of the catalog under a steady load on every route\n")
        loads = [SteadyLoad(self.stack, f"/api/{service}/health/", max_seconds=300) for service in SERVICES]
        for load in loads:
            load.thread.start()
        result, took = timed(self.deploy_catalog)
        for load in loads:
            load.__exit__()
        self.report.say(f"`make deploy SERVICE={CATALOG}` exited {result.returncode} after {took:.1f} s.\n")
        self.report.table("route", "requests", "failed")
        for load in loads:
            self.report.row(load.path, load.sent, load.failed)

    def reloads(self, rate: float = 100, threads: int = 4) -> None:
        """Scale-out, scale-in, deploy and a change of workers under two keep-alive clients at once: one that never
        sends a request again, and one that retries a GET once when its connection closed as it went out (make
        load's default)."""
        self.report.say("\n## Scale and deploy under two kinds of keep-alive client\n")
        self.report.say(f"Each client sends {rate:g} GETs/s of the catalog's health over {threads} keep-alive")
        self.report.say("connections, from 2 s before each operation until 2 s after it. Every reload closes nginx's")
        self.report.say("idle keep-alive connections: a client that never retries loses a request sent on one as it")
        self.report.say("closes; one that retries such a GET once (browsers, urllib3, `make load`) loses none. The")
        self.report.say("last column counts the gateway's log lines at error or above during the operation.\n")
        self.report.table("operation", "took", "never retried: sent", "failed", "retried once: sent", "failed",
                          "gateway lines ≥ error")  # fmt: skip
        url = f"{self.stack.base_url}/api/{CATALOG}/health/"
        operations = [
            ("scale out, 1 → 3 replicas", lambda: self.stack.scale(CATALOG, 3)),
            ("scale in, 3 → 1 replica", lambda: self.stack.scale(CATALOG, 1)),
            (f"`make deploy SERVICE={CATALOG}`", lambda: self.deploy_catalog().check_returncode()),
            (f"`make scale SERVICE={CATALOG} PROCESSES=4 THREADS=1`", lambda: self.scale_workers(CATALOG, 4, 1)),
        ]
        for name, operation in operations:
            stop = threading.Event()
            outcomes: dict[bool, Counter] = {}

            def client(retry: bool) -> None:
                outcomes[retry] = send(url, rate, 300, threads, stop=stop, retry=retry)  # noqa: B023

            clients = [threading.Thread(target=client, args=(retry,)) for retry in (False, True)]
            for thread in clients:
                thread.start()
            time.sleep(2)
            since = time.time()
            _, took = timed(operation)
            time.sleep(2)
            errors = self.stack.gateway_errors(since)
            stop.set()
            for thread in clients:
                thread.join()
            failed = {retry: sum(n for outcome, n in outcomes[retry].items() if outcome != "200") for retry in outcomes}
            self.report.row(name, f"{took:.1f} s", sum(outcomes[False].values()), failed[False],
                            sum(outcomes[True].values()), failed[True], len(errors))  # fmt: skip
        self.stack.compose("up", "--detach", "--wait", timeout=300)  # the drill's own workers again

    def scale_workers(self, service: str, processes: int, threads: int) -> None:
        """make scale of a service's workers (a rolling replacement), from a copy of the tree: it writes the
        copy's .env, not this one's."""
        tree = tree_copy(Path(tempfile.mkdtemp()) / "tree")
        environment = {**self.stack.compose_environment(), "COMPOSE_PROJECT_NAME": self.stack.project}
        command = [sys.executable, str(tree / "scripts" / "scale.py"), service, "--processes", str(processes),
                   "--threads", str(threads)]  # fmt: skip
        subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True, timeout=300, check=True)

    def schema_change(self, readers: int = 4) -> None:
        """A release that drops a column, refused by make deploy; one that adds a nullable column, deployed under
        keep-alive readers; then the release before it again, on the expanded schema (docs/adr/0006)."""
        self.report.say("\n## A schema change under load: expand, and a contract refused\n")
        self.report.say(f"{readers} keep-alive clients read the catalog's products throughout each deploy.\n")
        self.report.table("deploy of the catalog", "exit", "took", "reads", "failed", "what it said",
                          text_columns=(0, 5))  # fmt: skip
        trees = Path(tempfile.mkdtemp())
        dropping, adding = tree_copy(trees / "dropping"), tree_copy(trees / "adding")
        drop_product_updated_at(dropping / CATALOG)
        add_product_note(adding / CATALOG)
        for name, tree in [("drops Product.updated_at", dropping), ("adds Product.note, nullable", adding),
                           ("the release before, again", ROOT)]:  # fmt: skip
            loads = [SteadyLoad(self.stack, f"/api/{CATALOG}/products", max_seconds=300) for _ in range(readers)]
            for load in loads:
                load.thread.start()
            command = [sys.executable, str(tree / "scripts" / "deploy.py"), CATALOG, "--project", self.stack.project]
            started = time.monotonic()
            result = subprocess.run(command, cwd=tree, env=self.stack.compose_environment(), capture_output=True,
                                    text=True)  # fmt: skip
            took = time.monotonic() - started
            for load in loads:
                load.__exit__()
            said = result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or [""]
            first = next((line.strip() for line in said if " is gone " in line), said[-1].strip())
            self.report.row(name, result.returncode, f"{took:.1f} s", sum(load.sent for load in loads),
                            sum(load.failed for load in loads), f"`{first}`")  # fmt: skip

    def faults(self) -> None:
        self.report.say("\n## Faults, one at a time\n")
        self.report.say("How long each took to show at the gateway, what the gateway answered meanwhile, and how")
        self.report.say("long until the route served again (from the moment the fault was undone, or from the")
        self.report.say("fault itself where the stack undoes it).\n")
        self.report.table("fault", "seen after", "answer while down", "serving again after", text_columns=(0, 2))
        self.crash()
        self.stop_and_start()
        self.pause()
        self.gateway_restart()
        self.network_cut()
        self.outbox_backlog(orders=200)

    def crash(self) -> None:
        os.kill(self.stack.container(CATALOG).attrs["State"]["Pid"], signal.SIGKILL)
        seen, answer = watch(self.health(CATALOG), lambda status: status != "200", 5)
        recovered, _ = watch(self.health(CATALOG), lambda status: status == "200", 30)
        self.report.row("catalog's main process killed (SIGKILL): its restart policy", seconds(seen), answer,
                        seconds(recovered))  # fmt: skip

    def stop_and_start(self) -> None:
        container = self.stack.container(CATALOG)
        stopping = threading.Thread(target=lambda: container.stop(timeout=10))
        started = time.monotonic()
        stopping.start()
        seen, answer = watch(self.health(CATALOG), lambda status: status != "200", 15)
        stopping.join()
        stopped_after = time.monotonic() - started
        self.stack.compose("start", CATALOG)
        recovered, _ = watch(self.health(CATALOG), lambda status: status == "200", 30)
        fault = f"catalog `docker stop` ({stopped_after:.1f} s to stop), then `start`"
        self.report.row(fault, seconds(seen), answer, seconds(recovered))

    def pause(self) -> None:
        container = self.stack.container(CATALOG)
        engine.pause(container)
        answer, seen = timed(self.health(CATALOG))  # the gateway gives up after its read timeout
        container.unpause()
        recovered, _ = watch(self.health(CATALOG), lambda status: status == "200", 30)
        self.report.row("catalog paused (`docker pause`), then unpaused", seconds(seen), answer, seconds(recovered))

    def gateway_restart(self) -> None:
        gateway = self.stack.container(GATEWAY)
        restarting = threading.Thread(target=lambda: gateway.restart(timeout=10))
        restarting.start()
        seen, answer = watch(lambda: self.outcome("/healthz"), lambda status: status != "200", 15)
        restarting.join()
        every_route = lambda: all(self.health(service)() == "200" for service in SERVICES)  # noqa: E731
        recovered, _ = watch(every_route, bool, 30)
        self.report.row("gateway restarted (`docker restart`)", seconds(seen), answer, seconds(recovered))

    def network_cut(self) -> None:
        headers = self.customer("drill")
        body = {"product_id": 1, "quantity": 1}
        order = lambda: self.outcome(f"/api/{ORDERS}/orders", "POST", json=body, headers=headers)  # noqa: E731
        container = self.stack.container(ORDERS)
        backend = self.stack.docker.networks.get(f"{self.stack.project}_backend")
        backend.disconnect(container)
        watched = 5
        seen, answer = watch(order, lambda status: status != "201", watched)
        backend.connect(container, aliases=[ORDERS])
        recovered, _ = watch(order, lambda status: status == "201", 30)
        # Calls between services travel the gateway's socket, in a volume: no network is needed for an order.
        seen_text = f"never ({watched} s watched)" if seen is None else seconds(seen)
        self.report.row("orders cut off every network, then reconnected (an order)", seen_text, answer,
                        seconds(recovered))  # fmt: skip

    def outbox_backlog(self, orders: int) -> None:
        """Notifications down while orders are placed: how long the outbox takes to deliver them all after."""
        headers = self.customer("backlog")
        product_id = self.stack.product(stock=orders, staff_token=self.stack.staff_login())
        self.stack.compose("stop", NOTIFICATIONS)
        order = {"product_id": product_id, "quantity": 1}
        placed = Counter(
            self.outcome(f"/api/{ORDERS}/orders", "POST", json=order, headers=headers) for _ in range(orders)
        )
        waiting = self.stack.get(f"/api/{ORDERS}/health/").json()["outbox"]["waiting"]
        self.stack.compose("start", NOTIFICATIONS)
        started = time.monotonic()
        serving, _ = watch(self.health(NOTIFICATIONS), lambda status: status == "200", 30)

        def feed_size() -> int:
            response = self.stack.get(f"/api/{NOTIFICATIONS}/feed?limit=1000", headers=headers)
            return len(response.json()) if response.ok else 0

        watch(feed_size, lambda size: size >= placed["201"], 120)
        delivered = time.monotonic() - started if feed_size() >= placed["201"] else None
        fault = f"notifications stopped while {orders} orders were placed; every event in the feed"
        self.report.row(fault, seconds(serving), f"orders: {counts(placed)}; {waiting} events waiting in the outbox",
                        seconds(delivered))  # fmt: skip
        self.report.say(f"\nThe feed then held {feed_size()} notifications for {placed['201']} orders.")

    def paused_dependency(self, clients: int = 10, pause_seconds: float = 20, after_seconds: float = 10) -> None:
        """Accounts paused while clients order and read their feed: every call needs it (token introspection)."""
        self.report.say(
            f"\n## Accounts paused for {pause_seconds:.0f} s, {clients} clients ordering and reading feeds\n"
        )
        self.report.say("Every order and feed asks accounts who the caller is. Answers of requests sent from 5 s")
        self.report.say("into the pause until it ends, and how long after the unpause every client is served again.\n")
        headers = [self.customer(f"paused-{n}") for n in range(clients)]
        product_id = self.stack.product(stock=100_000, staff_token=self.stack.staff_login("paused-staff"))
        order = {"product_id": product_id, "quantity": 1}
        answers: list[tuple[float, str, float, bool]] = []  # (sent, since the pause; status; seconds; Retry-After)
        lock = threading.Lock()
        ends_at = time.monotonic() + 2 + pause_seconds + after_seconds

        def client(auth: dict[str, str]) -> None:
            calls = [("POST", f"/api/{ORDERS}/orders", order), ("GET", f"/api/{NOTIFICATIONS}/feed", None)]
            for _ in range(100_000):  # bounded in count and in time
                for method, path, body in calls:
                    if time.monotonic() > ends_at:
                        return
                    sent = time.monotonic()
                    try:
                        response = self.stack.request(method, path, json=body, headers=auth, timeout=20)
                        status, retry_after = str(response.status_code), "Retry-After" in response.headers
                    except Exception as error:  # what a client sees of a gateway that answers nothing
                        status, retry_after = type(error).__name__, False
                    with lock:
                        answers.append((sent, status, time.monotonic() - sent, retry_after))
                time.sleep(0.5)  # each client orders twice a second: together, well within the gateway's write limit

        threads = [threading.Thread(target=client, args=(auth,)) for auth in headers]
        for thread in threads:
            thread.start()
        time.sleep(2)
        accounts = self.stack.container(ACCOUNTS)
        engine.pause(accounts)
        paused_at = time.monotonic()
        time.sleep(pause_seconds)
        accounts.unpause()
        unpaused_at = time.monotonic()
        for thread in threads:
            thread.join()

        during = [answer for answer in answers if paused_at + 5 <= answer[0] < unpaused_at]
        latencies = sorted(took for _, _, took, _ in during)
        statuses = Counter(status for _, status, _, _ in during)
        with_retry_after = sum(1 for _, status, _, retry_after in during if status == "503" and retry_after)
        after = sorted((sent, status) for sent, status, _, _ in answers if sent >= unpaused_at)
        failing_after = [sent for sent, status in after if status not in ("200", "201")]
        served_again = (max(failing_after) - unpaused_at) if failing_after else 0.0
        p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else None
        self.report.table("figure", "value", text_columns=(0, 1))
        self.report.row("requests sent from 5 s into the pause until its end", len(during))
        self.report.row("their answers", counts(statuses))
        self.report.row("of the 503s, with Retry-After", with_retry_after)
        self.report.row("their p50 / p99 / max", "-" if p99 is None else
                        f"{latencies[len(latencies) // 2]:.3f} s / {p99:.3f} s / {latencies[-1]:.3f} s")  # fmt: skip
        self.report.row("after the unpause, the last failed request was sent", f"{served_again:.2f} s after it")
        self.report.row("answers after the unpause", counts(Counter(status for _, status in after)))

    def trust(self) -> None:
        """What a service gets that asks the gateway for the replicas' stats, and what a replayed token gets."""
        self.report.say("\n## From inside a service\n")
        asked = ask_the_gateway(
            self.stack.container(NOTIFICATIONS), "/run/gateway/internal.sock", stats_paths(self.stack)
        )
        product_id = self.stack.product(stock=5, staff_token=self.stack.staff_login("trust-staff"))
        replayed = replay_a_token(self.stack, product_id)
        self.report.table("what", "answer", text_columns=(0, 1))
        self.report.row(f"{NOTIFICATIONS} asks the gateway for each replica's uWSGI stats, the upstreams and "
                        "stub_status", counts(Counter(str(status) for status, _ in asked.values())))  # fmt: skip
        self.report.row("orders reserves stock with a token it signed for that request", replayed["first"])
        self.report.row("the same request, the same token, again", replayed["replayed"])
        self.report.row("that token on another reservation", replayed["elsewhere"])
        self.report.row("a token orders signed to live ten years", replayed["ten_years"])

    def status_accuracy(self, rates: tuple[float, ...] = (60, 600), seconds: int = 16) -> None:
        """The status page's requests/s for the catalog against what a client sent it in the same 10 s."""
        self.report.say("\n## The status page against the offered load\n")
        self.report.say(f"wrk GETs the catalog's health at a set rate for {seconds:.0f} s; a second before its end,")
        self.report.say("the page's rate (its last 10 s) against wrk's rate over the run.\n")
        self.report.table("offered", "client's rate", "page's rate", "error", "requests not sampled", text_columns=())
        url = f"{self.stack.base_url}/api/{CATALOG}/health"
        for rate in rates:
            self.stack.get("/status/data.json")  # someone watches: the page polls from now on
            # wrk, not Python: on two cores a Python client cannot offer 600 requests/s beside the stack.
            script = rate_script(url, rate, connections=16)
            with ThreadPoolExecutor(1) as sender:
                sending = sender.submit(run_wrk, url, connections=16, script=script, seconds=seconds)
                time.sleep(seconds - 1)
                data = self.stack.get("/status/data.json").json()  # its last window is well inside the run
                client = sending.result().requests_per_second
            (shown,) = [service for service in data["services"] if service["name"] == CATALOG]
            page = shown["requests_per_second"] or 0.0
            error = f"{(page - client) / client * 100:+.1f} %" if client else "-"
            self.report.row(f"{rate:g}/s", f"{client:.1f}/s", f"{page:.1f}/s", error, shown["unsampled"])

    def connection_flood(self, connections: int = 9000) -> None:
        """Connections opened at once to the gateway's published port and held, then closed: does the port answer?"""
        self.report.say(f"\n## {connections:,} connections at once to the published port\n")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, connections + 1024)), hard))
        opened: list[socket.socket] = []
        refused: Counter[str] = Counter()
        for _ in range(connections):
            try:
                opened.append(socket.create_connection(("127.0.0.1", self.stack.port), timeout=5))
            except OSError as error:
                refused[type(error).__name__] += 1
        time.sleep(2)
        for connection in opened:
            connection.close()
        answering, status = watch(lambda: self.outcome("/healthz"), lambda status: status == "200", 30)
        engine = "docker-proxy" if userland_proxy_note() else "the kernel (iptables, no docker-proxy)"
        self.report.table("figure", "value", text_columns=(0, 1))
        self.report.row("published port forwarded by", engine)
        self.report.row("connections opened and held 2 s", f"{len(opened):,}")
        self.report.row("connections that failed", counts(refused) or "none")
        self.report.row("the port answered /healthz again after they closed", seconds(answering) if answering
                        is not None else f"never within 30 s (last: {status})")  # fmt: skip

    def worker_or_replica(self) -> None:
        """What a crash costs on each side of "replicas or workers?": one uWSGI worker of the catalog's two, against
        one replica of two. Each SIGKILLed under a steady load on the catalog."""
        self.report.say("\n## A worker's crash against a replica's\n")
        self.report.say("One client reads the catalog's health without pause (retrying a GET once on a closed")
        self.report.say("connection). Full strength: the worker respawned by its uWSGI master, or the replica")
        self.report.say("restarted by its restart policy, healthy and routed again.\n")
        self.report.table("what was killed (SIGKILL)", "requests", "failed", "full strength again after")
        health = f"/api/{CATALOG}/health/"
        container = self.stack.container(CATALOG)
        with SteadyLoad(self.stack, health, max_seconds=60) as load:
            time.sleep(1)
            workers = uwsgi_workers(container)
            os.kill(workers[0], signal.SIGKILL)
            respawned, _ = watch(lambda: uwsgi_workers(container),
                                 lambda now: workers[0] not in now and len(now) == len(workers), 30)  # fmt: skip
            time.sleep(2)
        self.report.row(f"one uWSGI worker of {len(workers)}, in the catalog's one replica", load.sent, load.failed,
                        seconds(respawned))  # fmt: skip

        self.stack.scale(CATALOG, 2)
        self.stack.replicas_answering(health, 2, timeout=10)
        victim = self.stack.containers(CATALOG)[0]
        restarts = victim.attrs["RestartCount"]

        def restarted_and_healthy() -> bool:
            victim.reload()
            healthy = victim.attrs["State"].get("Health", {}).get("Status") == "healthy"
            return victim.attrs["RestartCount"] > restarts and healthy

        hostname = victim.attrs["Config"]["Hostname"]
        routed = lambda: f"{CATALOG}/{hostname}" in self.stack.replicas_answering(health, 2, timeout=2)  # noqa: E731
        with SteadyLoad(self.stack, health, max_seconds=90) as load:
            time.sleep(1)
            killed_at = time.monotonic()
            os.kill(victim.attrs["State"]["Pid"], signal.SIGKILL)
            healthy, _ = watch(restarted_and_healthy, bool, 60)
            answered, _ = watch(routed, bool, 10) if healthy is not None else (None, False)
            back = None if answered is None else time.monotonic() - killed_at
            time.sleep(2)
        self.report.row("one replica of 2 (its main process), each of 2 workers", load.sent, load.failed,
                        seconds(back))  # fmt: skip
        self.stack.scale(CATALOG, 1)

    def crash_during_orders(self) -> None:
        """Orders' main process killed while 30 clients place orders; each retries with its Idempotency-Key."""
        self.report.say("\n## Orders killed (SIGKILL) while 30 clients place orders\n")
        self.report.say("Each client sends its order again, with its `Idempotency-Key`, until it is made.\n")
        auth = self.customer("crash")
        product_id = self.stack.product(stock=1000, staff_token=self.stack.staff_login("crash-staff"))

        def invariant_holds() -> bool:
            try:  # the orders container is restarting for a while: its report is not there yet
                return leaks(self.stack, product_id, 1000) == []
            except Exception:
                return False

        with OrderingClients(self.stack, auth, product_id) as clients:
            watch(lambda: len(clients.made), lambda made: made >= 30, 60)
            os.kill(self.stack.container(ORDERS).attrs["State"]["Pid"], signal.SIGKILL)
            killed = time.monotonic()
            clients.stopped.set()
            settled, _ = watch(invariant_holds, bool, LEAK_BOUND_SECONDS)
        answered = time.monotonic() - killed
        made = {answer.json()["id"] for answer in clients.made if answer is not None}
        self.report.say(f"- {len(clients.made)} orders made, {len(made)} distinct (one per `Idempotency-Key`);")
        self.report.say(f"- stock + held = 1000, each reservation held by one placed order, none pending: "
                        f"{seconds(settled)} after the kill;")  # fmt: skip
        self.report.say(f"- the last client had its order {answered:.1f} s after the kill.")

    def backup_restore(self, before: int = 20, after: int = 5) -> None:
        """Orders placed, a backup, more orders, the orders service's volume lost, the backup restored: on
        SQLite and on PostgreSQL (a stack of its own for the database the drill's stack does not run)."""
        self.report.say("\n## Back up the orders, lose their volume, restore\n")
        self.report.say(f"{before} orders placed, `make backup SERVICE={ORDERS}`, {after} more orders, then the orders")
        self.report.say("service and its database's volume removed and started empty (a lost disk), and")
        self.report.say(f"`make restore SERVICE={ORDERS}`, while one client reads each other service's health.\n")
        self.report.table("database", "backup took", "restore took", "orders before the copy: back",
                          "same order for a key used before it", "orders after it: lost (the recovery point)",
                          "other services: requests, failed")  # fmt: skip
        refused_restores: dict[str, list[list[str]]] = {}
        for database in ("sqlite", "postgres"):
            if database == self.stack.database:
                refused_restores[database] = self.backup_restore_on(self.stack, before, after)
                continue
            other = Stack(f"{self.stack.project}-{database}", database=database)
            other.up()
            try:
                refused_restores[database] = self.backup_restore_on(other, before, after)
            finally:
                other.down()
        self.report.say("\nThen the same copy, changed as an attacker or a hurried operator would, restored while a")
        self.report.say(
            f"client reads the health of {ORDERS}: each refused before {ORDERS} stops (its replicas not restarted).\n"
        )
        self.report.table("database", "the copy", "what restore said", f"{ORDERS} restarted",
                          "health reads: sent, failed")  # fmt: skip
        for database, rows in refused_restores.items():
            for row in rows:
                self.report.row(database, *row)

    def backup_restore_on(self, stack: Stack, before: int, after: int) -> list[list[str]]:
        """One database's row of the backup table; returns the rows of its refused restores."""
        copy = Path(tempfile.mkdtemp()) / "copy"
        auth = {"Authorization": stack.customer("backup")["Authorization"]}
        product_id = stack.product(stock=1000, staff_token=stack.staff_login("backup-staff"))

        def place(key: str) -> str:
            body = {"product_id": product_id, "quantity": 1}
            return stack.post(f"/api/{ORDERS}/orders", body, headers={**auth, "Idempotency-Key": key}).json()["id"]

        placed_before = [place(f"before-{n}") for n in range(before)]
        taken, backup_took = timed(lambda: subprocess.run(
            [*BACKUP_TOOL, "backup", ORDERS, "--into", str(copy), "--project", stack.project],
            env=stack.compose_environment(), capture_output=True, text=True))  # fmt: skip
        placed_after = [place(f"after-{n}") for n in range(after)]
        loads = [SteadyLoad(stack, f"/api/{service}/health/", max_seconds=300) for service in SERVICES
                 if service != ORDERS]  # fmt: skip
        for load in loads:
            load.thread.start()
        lost = [ORDERS, f"{ORDERS}-db"] if stack.database == "postgres" else [ORDERS]
        stack.compose("rm", "--stop", "--force", *lost)
        volume = (
            f"{stack.project}_{ORDERS}-db-data" if stack.database == "postgres" else f"{stack.project}_{ORDERS}-data"
        )
        engine.patiently(stack.docker.volumes.get(volume).remove)
        stack.compose("up", "--detach", "--wait", *lost, timeout=300)
        restored, restore_took = timed(lambda: subprocess.run(
            [*BACKUP_TOOL, "restore", ORDERS, "--from", str(copy), "--project", stack.project],
            env=stack.compose_environment(), capture_output=True, text=True))  # fmt: skip
        for load in loads:
            load.__exit__()
        if taken.returncode or restored.returncode:
            self.report.row(stack.database, "failed", (taken.stderr + restored.stderr).strip()[:200], "", "", "", "")
            return []
        back = sum(stack.get(f"/api/{ORDERS}/orders/{oid}", headers=auth).status_code == 200 for oid in placed_before)
        same = place("before-0") == placed_before[0]
        gone = sum(stack.get(f"/api/{ORDERS}/orders/{oid}", headers=auth).status_code == 404 for oid in placed_after)
        others = f"{sum(load.sent for load in loads)}, {sum(load.failed for load in loads)}"
        self.report.row(stack.database, f"{backup_took:.1f} s", f"{restore_took:.1f} s", f"{back} of {before}",
                        "yes" if same else "no", f"{gone} of {after}", others)  # fmt: skip
        return self.refused_restores_on(stack, copy)

    def refused_restores_on(self, stack: Stack, copy: Path) -> list[list[str]]:
        """The same copy, with the catalog's beside it, changed each way a restore must refuse (tests/support/
        backups.py), restored while a client reads the orders' health: what it said, and whether they served on."""
        donor = Path(tempfile.mkdtemp()) / "donor"
        subprocess.run([*BACKUP_TOOL, "backup", CATALOG, "--into", str(donor), "--project", stack.project],
                       env=stack.compose_environment(), capture_output=True, text=True, check=True)  # fmt: skip
        rows = []
        for how in TAMPERINGS:
            folder = Path(tempfile.mkdtemp()) / "tampered"
            shutil.copytree(copy, folder)
            for file in donor.iterdir():
                shutil.copy(file, folder / file.name)
            said = tamper(folder, ORDERS, CATALOG, how)
            started = {container.id: container.attrs["State"]["StartedAt"] for container in stack.containers(ORDERS)}
            with SteadyLoad(stack, f"/api/{ORDERS}/health/", max_seconds=60) as load:
                restore = [*BACKUP_TOOL, "restore", ORDERS, "--from", str(folder), "--project", stack.project]
                refused = subprocess.run(restore, env=stack.compose_environment(), capture_output=True, text=True)
            restarted = {c.id: c.attrs["State"]["StartedAt"] for c in stack.containers(ORDERS)} != started
            reason = next((line for line in refused.stderr.splitlines() if said in line), refused.stderr.strip())
            reason = reason.split("nothing was changed: ")[-1].removeprefix("backup: FAILED: ")
            verdict = "refused" if refused.returncode != 0 and said in refused.stderr else "**restored**"
            rows.append(
                [how, f"{verdict}: {reason[:100]}", "yes" if restarted else "no", f"{load.sent}, {load.failed}"]
            )
        return rows

    def abuse(self) -> None:
        """What one hostile client can do: oversized headers at a scaled service, and a login flood."""
        self.report.say("\n## Abuse from one client\n")
        self.stack.scale(ACCOUNTS, 2)
        refused = Counter(self.outcome(f"/api/{ACCOUNTS}/health/", headers=OVERSIZED_HEADERS) for _ in range(20))
        served = Counter(self.outcome(f"/api/{ACCOUNTS}/health/") for _ in range(100))
        self.stack.scale(ACCOUNTS, 1)
        self.report.say(f"- 20 requests with 21 KB of headers at 2 replicas of {ACCOUNTS}: {counts(refused)};")
        self.report.say(f"- 100 normal requests right after: {counts(served)};")

        headers = self.customer("bystander")
        product_id = self.stack.product(stock=100_000, staff_token=self.stack.staff_login("flood-staff"))
        order = {"product_id": product_id, "quantity": 1}
        calls = [("POST", f"/api/{ORDERS}/orders", order), ("GET", f"/api/{NOTIFICATIONS}/feed", None)]
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        with LoginFlood(self.stack) as flood:
            while flood.running():
                for method, path, body in calls:
                    outcome, took = timed(lambda: self.outcome(path, method, json=body, headers=headers))  # noqa: B023
                    statuses[outcome] += 1
                    latencies.append(took * 1000)
                time.sleep(0.05)
        self.report.say(f"- a login flood, {flood.threads} clients from one address for {flood.seconds:.0f} s: "
                        f"{counts(flood.outcomes)};")  # fmt: skip
        percentiles = statistics.quantiles(latencies, n=100)
        self.report.say(
            f"- meanwhile another client's orders and feed: {counts(statuses)}; p50 {percentiles[49]:.0f} ms, "
            f"p99 {percentiles[98]:.0f} ms, max {max(latencies):.0f} ms."
        )

    def customer(self, prefix: str) -> dict[str, str]:
        """The Authorization header of a newly registered user."""
        return {"Authorization": self.stack.customer(prefix)["Authorization"]}

    def run(self) -> None:
        print(f"Starting the drill stack ({self.stack.project}) ...", flush=True)
        self.stack.up()
        try:
            for part in self.parts:
                getattr(self, part.replace("-", "_"))()
        finally:
            self.stack.down()


def uwsgi_workers(container) -> list[int]:
    """The host pids of the uWSGI workers of a replica: the children of its uWSGI master (the entrypoint's uwsgi
    child), living ones only."""
    processes = container.top(ps_args="-o pid,ppid,stat,args")["Processes"]
    main_pid = str(container.attrs["State"]["Pid"])
    masters = [pid for pid, ppid, _, args in processes if ppid == main_pid and "bin/uwsgi" in args]
    return [int(pid) for pid, ppid, stat, args in processes
            if ppid in masters and "bin/uwsgi" in args and not stat.startswith("Z")]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where the report goes (default: docs/drill.md, for a whole drill)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run this part only (repeatable; prints only)")
    arguments = parser.parse_args()
    out = arguments.out or (None if arguments.only else ROOT / "docs" / "drill.md")
    report = Report()
    Drill(report, arguments.only or PARTS).run()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        preamble = report_preamble("The fault drill", "make drill")
        lines = [*preamble, "A drill, not a test: it asserts nothing.", "", *report.lines]
        out.write_text("\n".join(lines) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
