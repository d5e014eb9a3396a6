"""The fault drill (`make drill`): a rolling deploy under load, then one fault at a time, with the figures.

It starts its own copy of the stack, keeps a steady load on every route while it rolls the catalog to a new
image, and prints how many requests each route sent and lost. Then it injects the faults the stack promises to
survive and prints, for each, how long the fault took to show at the gateway and how long recovery took. A
drill, not a test: it prints figures and asserts nothing.
"""

import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable

from stack import (
    ACCOUNTS,
    CATALOG,
    GATEWAY,
    LEAK_BOUND_SECONDS,
    NOTIFICATIONS,
    ORDERS,
    OVERSIZED_HEADERS,
    ROOT,
    SERVICES,
    LoginFlood,
    OrderingClients,
    Stack,
    SteadyLoad,
    leaks,
    timed,
)

POLL_SECONDS = 0.05


def first_time(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until condition first holds, or None if it did not within timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(POLL_SECONDS)
    return None


def seconds(value: float | None) -> str:
    return "not within the limit" if value is None else f"{value:.2f} s"


class Drill:
    def __init__(self):
        self.stack = Stack(f"microstack-drill-{uuid.uuid4().hex[:8]}")

    def status(self, path: str, method: str = "GET", **kwargs) -> int:
        try:
            return self.stack.request(method, path, timeout=20, **kwargs).status_code
        except Exception:
            return 0

    def route_fails(self, service: str) -> Callable[[], bool]:
        return lambda: self.status(f"/api/{service}/health/") != 200

    def route_serves(self, service: str) -> Callable[[], bool]:
        return lambda: self.status(f"/api/{service}/health/") == 200

    def rollout(self) -> None:
        print("\nRolling deploy of the catalog under a steady load on every route")
        loads = [SteadyLoad(self.stack, f"/api/{service}/health/", max_seconds=300) for service in SERVICES]
        for load in loads:
            load.thread.start()
        command = [sys.executable, str(ROOT / "scripts" / "deploy.py"), CATALOG, "--no-build"]
        started = time.monotonic()
        result = subprocess.run(
            [*command, "--project", self.stack.project],
            env=self.stack.compose_environment(),
            capture_output=True,
            text=True,
        )
        took = time.monotonic() - started
        for load in loads:
            load.__exit__()
        print(f"deploy exited {result.returncode} after {took:.1f} s")
        print("| route | requests | failed |\n| --- | ---: | ---: |")
        for load in loads:
            print(f"| {load.path} | {load.sent} | {load.failed} |")

    def faults(self) -> None:
        print("\nFaults, one at a time: time until the gateway shows it, time until the route serves again")
        print("| fault | seen after | answer while down | recovered after |\n| --- | ---: | --- | ---: |")
        self.crash()
        self.stop_and_start()
        self.pause()
        self.gateway_restart()
        self.network_cut()
        self.outbox_backlog(orders=200)

    def report(self, fault: str, seen: float | None, answer: str, recovered: float | None) -> None:
        print(f"| {fault} | {seconds(seen)} | {answer} | {seconds(recovered)} |", flush=True)

    def crash(self) -> None:
        container = self.stack.container(CATALOG)
        os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
        seen = first_time(self.route_fails(CATALOG), 5)
        answer = self.status(f"/api/{CATALOG}/health/")
        recovered = first_time(self.route_serves(CATALOG), 30)
        self.report("catalog crashed (SIGKILL), restart policy", seen, str(answer), recovered)

    def stop_and_start(self) -> None:
        _, stop_seconds = timed(lambda: self.stack.container(CATALOG).stop(timeout=10))
        answer = self.status(f"/api/{CATALOG}/health/")
        self.stack.compose("start", CATALOG)
        recovered = first_time(self.route_serves(CATALOG), 30)
        self.report(f"catalog `docker stop` ({stop_seconds:.1f} s to stop), then start", 0.0, str(answer), recovered)

    def pause(self) -> None:
        container = self.stack.container(CATALOG)
        container.pause()
        answer, seen = timed(lambda: self.status(f"/api/{CATALOG}/health/"))
        container.unpause()
        recovered = first_time(self.route_serves(CATALOG), 30)
        self.report("catalog paused, then unpaused", seen, str(answer), recovered)

    def gateway_restart(self) -> None:
        self.stack.container(GATEWAY).restart(timeout=10)
        recovered = first_time(lambda: all(self.route_serves(service)() for service in SERVICES), 30)
        self.report("gateway restarted", 0.0, "connection refused", recovered)

    def network_cut(self) -> None:
        self.stack.post(f"/api/{ACCOUNTS}/register", {"username": "drill", "password": "drill-password"})
        token = self.stack.login("drill", "drill-password")
        headers = {"Authorization": f"Bearer {token}"}
        body = {"product_id": 1, "quantity": 1}
        container = self.stack.container(ORDERS)
        backend = self.stack.docker.networks.get(f"{self.stack.project}_backend")
        backend.disconnect(container)
        answer, seen = timed(lambda: self.status(f"/api/{ORDERS}/orders", "POST", json=body, headers=headers))
        backend.connect(container, aliases=[ORDERS])
        places = lambda: self.status(f"/api/{ORDERS}/orders", "POST", json=body, headers=headers) == 201  # noqa: E731
        recovered = first_time(places, 30)
        # Calls between services travel the gateway's socket, in a volume: the answer stays 201.
        self.report("orders cut off every network, then reconnected (an order)", seen, str(answer), recovered)

    def outbox_backlog(self, orders: int) -> None:
        """Notifications down while orders are placed: how long the outbox takes to deliver them all after."""
        self.stack.post(f"/api/{ACCOUNTS}/register", {"username": "backlog", "password": "drill-password"})
        headers = {"Authorization": f"Bearer {self.stack.login('backlog', 'drill-password')}"}
        product_id = self.stack.product(stock=orders, staff_token=self.stack.staff_login())
        self.stack.compose("stop", NOTIFICATIONS)
        order = {"product_id": product_id, "quantity": 1}
        placed = [self.status(f"/api/{ORDERS}/orders", "POST", json=order, headers=headers) for _ in range(orders)]
        self.stack.compose("start", NOTIFICATIONS)
        started = time.monotonic()
        serving = first_time(self.route_serves(NOTIFICATIONS), 30)

        def feed_size() -> int:
            response = self.stack.get(f"/api/{NOTIFICATIONS}/feed?limit=1000", headers=headers)
            return len(response.json()) if response.ok else 0

        delivered = first_time(lambda: feed_size() >= placed.count(201), 120)
        total = None if delivered is None else time.monotonic() - started
        self.report(
            f"notifications stopped while {placed.count(201)} of {orders} orders were placed; all in the feed",
            serving,
            "orders 201, events held in the outbox",
            total,
        )
        print(f"(the feed then holds {feed_size()} notifications: each event once)")

    def crash_during_orders(self) -> None:
        """Orders' main process killed while 30 clients place orders; each retries with its Idempotency-Key."""
        print("\nOrders killed (SIGKILL) while 30 clients place orders, each sending its order again until made")
        self.stack.post(f"/api/{ACCOUNTS}/register", {"username": "crash", "password": "drill-password"})
        auth = {"Authorization": f"Bearer {self.stack.login('crash', 'drill-password')}"}
        product_id = self.stack.product(stock=1000, staff_token=self.stack.staff_login("crash-staff"))

        def invariant_holds() -> bool:
            try:  # the orders container is restarting for a while: its report is not there yet
                return leaks(self.stack, product_id, 1000) == []
            except Exception:
                return False

        with OrderingClients(self.stack, auth, product_id) as clients:
            first_time(lambda: len(clients.made) >= 30, 60)
            os.kill(self.stack.container(ORDERS).attrs["State"]["Pid"], signal.SIGKILL)
            killed = time.monotonic()
            clients.stopped.set()
            settled = first_time(invariant_holds, LEAK_BOUND_SECONDS)
        answered = time.monotonic() - killed
        made = {answer.json()["id"] for answer in clients.made if answer is not None}
        print(f"{len(clients.made)} orders made, {len(made)} distinct: one per Idempotency-Key")
        print(f"stock + held = 1000, each held by one placed order, none pending: {seconds(settled)} after the kill")
        print(f"the last client had its order {answered:.1f} s after the kill")

    def abuse(self) -> None:
        """What one hostile client can do: oversized headers at a scaled service, and a login flood."""
        print("\nAbuse from one client")
        self.stack.scale(ACCOUNTS, 2)
        refused = Counter(self.status(f"/api/{ACCOUNTS}/health/", headers=OVERSIZED_HEADERS) for _ in range(20))
        served = Counter(self.status(f"/api/{ACCOUNTS}/health/") for _ in range(100))
        self.stack.scale(ACCOUNTS, 1)
        print(f"20 requests with 21 KB of headers at 2 replicas of {ACCOUNTS}: {dict(refused)}")
        print(f"100 normal requests right after: {dict(served)}")

        self.stack.post(f"/api/{ACCOUNTS}/register", {"username": "bystander", "password": "drill-password"})
        headers = {"Authorization": f"Bearer {self.stack.login('bystander', 'drill-password')}"}
        product_id = self.stack.product(stock=100_000, staff_token=self.stack.staff_login("flood-staff"))
        order = {"product_id": product_id, "quantity": 1}
        calls = [("POST", f"/api/{ORDERS}/orders", order), ("GET", f"/api/{NOTIFICATIONS}/feed", None)]
        latencies, statuses = [], Counter()
        with LoginFlood(self.stack) as flood:
            while flood.running():
                for method, path, body in calls:
                    started = time.monotonic()
                    statuses[self.status(path, method, json=body, headers=headers)] += 1
                    latencies.append((time.monotonic() - started) * 1000)
                time.sleep(0.05)
        print(f"login flood, 60 clients from one address for {flood.seconds:.0f} s: {dict(flood.outcomes)}")
        percentiles = statistics.quantiles(latencies, n=100)
        print(
            f"meanwhile another client's orders and feed: {dict(statuses)}, p50 {percentiles[49]:.0f} ms, "
            f"p99 {percentiles[98]:.0f} ms, max {max(latencies):.0f} ms"
        )

    def run(self) -> None:
        print(f"Starting the drill stack ({self.stack.project}) ...", flush=True)
        self.stack.up()
        try:
            self.rollout()
            self.faults()
            self.crash_during_orders()
            self.abuse()
        finally:
            self.stack.down()


if __name__ == "__main__":
    Drill().run()
