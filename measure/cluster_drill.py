"""The three-node lab's drill (`make cluster-drill`): a lab of its own, each fault of a cluster under clients'
load, measured; written to --out (docs/cluster.md). A drill, not a test: it asserts nothing.

What it measures: the time the lab takes to come up; the CPU each node spends at rest; the latency a hop to
another node adds (requests through the gateway on node1, grouped by the node of the replica that served them);
then, each under a steady load on the replicated paths: a rolling update, a drained node, a lost worker node (the
time to reschedule), a lost database node (what its service answers, and when it serves again), and a swarm whose
one manager is lost.
"""

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import requests

# Run as a program, from this tree or a copy of it: the tools' shared module (scripts/), the suite's
# harness (tests/support/), the Swarm and lab tools.
sys.path[:0] = [
    str(Path(__file__).resolve().parents[1] / folder) for folder in ("scripts", "tests/support", "swarm", "lab")
]

from cluster import NODES, PLACEMENT, REFERENCE
from drill import Report, counts
from project import ACCOUNTS, CATALOG, ORDERS, ROOT, ToolError
from reports import report_preamble
from stack import SteadyLoads, container_cpu_seconds, timed, wait_until
from swarm_stack import ClusterStack

HEALTH = f"/api/{ACCOUNTS}/health/"
PRODUCTS = f"/api/{CATALOG}/products"
WORKER_NODE, DATABASE_NODE = "node3", "node2"
HOP_REQUESTS = 6000
# What the suite's stacks run with (tests/conftest.py): the same workers, so the figures compare.
DRILL_ENVIRONMENT = {"SERVICE1_PROCESSES": "3", "SERVICE1_THREADS": "2", "GATEWAY_LOGIN_BURST": "60"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def node_cpu_seconds(stack: ClusterStack, node: str) -> tuple[float, float]:
    """CPU time of a node so far: its engine's container (dockerd, containerd, the shims), and the tasks it runs,
    which are in the engine's cgroup parent (/node1, ...), not in its container's cgroup."""
    engine = container_cpu_seconds(stack.host_docker.containers.get(stack.lab.container(node)))
    v1, v2 = Path("/sys/fs/cgroup/cpuacct") / node / "cpuacct.usage", Path("/sys/fs/cgroup") / node / "cpu.stat"
    if v1.exists():  # nanoseconds
        return engine, int(v1.read_text()) / 1e9
    if v2.exists():  # usage_usec
        return engine, int(dict(line.split() for line in v2.read_text().splitlines())["usage_usec"]) / 1e6
    return engine, 0.0


def cpu_cell(engine: float, tasks: float) -> str:
    return f"**{engine + tasks:.1f}**: {engine:.1f} + {tasks:.1f}"


class ClusterDrill:
    def __init__(self, report: Report):
        self.report = report
        self.stack = ClusterStack(f"microstack-drill-{uuid.uuid4().hex[:6]}", environment=DRILL_ENVIRONMENT)

    def loads(self) -> SteadyLoads:
        return SteadyLoads(self.stack, [HEALTH, PRODUCTS], max_seconds=300)

    def run(self) -> None:
        say = self.report.say
        _, up_seconds = timed(self.stack.up)
        say("## Up")
        say()
        say(f"**{up_seconds:.0f} s**: `make cluster-up`'s work, from nothing to every service healthy behind the")
        say("gateway (the lab's images, three engines, one swarm, the stack's images built, pushed to the lab's")
        say("registry, pulled by each node, and deployed).")
        say()
        self.at_rest()
        self.stack.scale(ACCOUNTS, 3)
        self.stack.scale(CATALOG, 2)
        self.hop_latency()
        self.report.table(
            "fault, under load on two replicated paths",
            "requests",
            "failed",
            "failing for",
            "notes",
            text_columns=(0, 4),
        )
        self.rolling_update()
        self.drain()
        self.worker_lost()
        self.database_node_lost()
        say()
        self.one_manager_lost()

    def at_rest(self) -> None:
        """Each node's CPU with no request, as deployed: on these engines (26.x) `swarm.py up` has every service
        checked every 30 s once started, every second while starting (start_interval)."""
        say = self.report.say
        window = 30
        self.stack.lab.start_reference()
        time.sleep(10)  # the tasks that replaced the first ones (with the new checks) settle, the reference starts
        cpu = self.idle_cpu(window, [*NODES, REFERENCE])
        self.stack.lab.compose("--profile", REFERENCE, "rm", "--stop", "--force", REFERENCE)
        say("## At rest")
        say()
        say(f"CPU of each node over {window} s with no request, in % of one core: its engine (dockerd, containerd,")
        say("the shims) and its tasks, as `make swarm-up` leaves them on engines from 25: every healthcheck every")
        say("30 s once a task runs, every second while it starts (start_interval, which `swarm.py up` sets after")
        say("the deploy: `docker stack deploy` refuses it in a stack file). The goal is under 2 % per node. The")
        say("last row is the floor: the same engine, in a container as the nodes', in no swarm and running nothing.")
        say()
        self.report.table("node", "pinned here", "engine + tasks", text_columns=(0, 1))
        for node in NODES:
            runs = ", ".join(label.removeprefix("microstack.") for label in PLACEMENT[node]) or "stateless tasks"
            self.report.row(node, runs, cpu_cell(*cpu[node]))
        self.report.row("an engine alone", "nothing: no swarm, no task", cpu_cell(*cpu[REFERENCE]))
        say()

    def idle_cpu(self, window: float, engines: list[str]) -> dict[str, tuple[float, float]]:
        """Each engine's CPU over window seconds, its own and its tasks', in % of one core."""
        before = {engine: node_cpu_seconds(self.stack, engine) for engine in engines}
        time.sleep(window)
        after = {engine: node_cpu_seconds(self.stack, engine) for engine in engines}

        def percent(engine: str, part: int) -> float:
            return 100 * (after[engine][part] - before[engine][part]) / window

        return {engine: (percent(engine, 0), percent(engine, 1)) for engine in engines}

    def hop_latency(self) -> None:
        """Requests through the gateway on node1, grouped by the node of the replica that served each."""
        say = self.report.say
        self.stack.rebalance(ACCOUNTS)
        nodes = self.stack.nodes_of(ACCOUNTS)
        session = requests.Session()
        by_node: dict[str, list[float]] = {}
        for _ in range(HOP_REQUESTS):
            started = time.perf_counter()
            response = session.get(self.stack.base_url + HEALTH, timeout=5)
            elapsed = (time.perf_counter() - started) * 1000
            hostname = response.headers.get("X-Served-By", "/").split("/", 1)[1]
            by_node.setdefault(nodes.get(hostname, "?"), []).append(elapsed)
        say("## A hop to another node")
        say()
        say(f"{HOP_REQUESTS:,} sequential `GET {HEALTH}` through the gateway on node1, over one keep-alive connection,")
        say("with accounts at three replicas spread over the nodes (latency at the client, in ms).")
        say()
        self.report.table("replica on", "requests", "p50", "p99")
        for node in sorted(by_node):
            times = by_node[node]
            where = "node1 (the gateway's)" if node == NODES[0] else node
            self.report.row(where, len(times), f"{statistics.median(times):.2f}", f"{percentile(times, 0.99):.2f}")
        same = by_node.get(NODES[0], [])
        other = [t for node, times in by_node.items() if node != NODES[0] for t in times]
        if same and other:
            say()
            p50 = statistics.median(other) - statistics.median(same)
            p99 = percentile(other, 0.99) - percentile(same, 0.99)
            say(f"A hop to another node (VXLAN over the lab's bridge) adds **{p50:.2f} ms** at p50; at p99 the")
            say(f"difference is {p99:+.2f} ms (the slowest 1 % of each node's requests: they vary from run to run on a")
            say("shared machine more than the hop does).")
        say()

    def fault_row(self, fault: str, loads: SteadyLoads, notes: str) -> None:
        failing = f"{loads.failing_seconds:.1f} s" if loads.failed else "-"
        self.report.row(fault, loads.sent, loads.failed, failing, f"{notes}; {counts(loads.all_outcomes())}")

    def rolling_update(self) -> None:
        image = self.stack.derived_image(CATALOG, f'LABEL rolled="{time.time()}"')
        with self.loads() as loads:
            result, took = timed(lambda: self.stack.deploy(CATALOG, image))
        state = "rolled" if result.returncode == 0 else "FAILED: " + result.stderr.strip().splitlines()[-1]
        self.fault_row("rolling update of service2, 2 replicas (`swarm.py deploy`)", loads, f"{state} in {took:.0f} s")

    def drain(self) -> None:
        self.stack.rebalance(ACCOUNTS)
        with self.loads() as loads:
            started = time.monotonic()
            self.stack.set_availability(WORKER_NODE, "drain")
            moved = wait_until(lambda: self.stack.runs_off(ACCOUNTS, 3, WORKER_NODE), timeout=120)
            took = time.monotonic() - started
            self.stack.set_availability(WORKER_NODE, "active")
        notes = f"tasks moved in {took:.1f} s" if moved else "tasks not moved within 120 s"
        self.fault_row(f"drain {WORKER_NODE}", loads, notes)

    def worker_lost(self) -> None:
        self.stack.rebalance(ACCOUNTS)
        with self.loads() as loads:
            lost = time.monotonic()
            self.stack.kill_node(WORKER_NODE)
            wait_until(lambda: self.stack.node_state(WORKER_NODE) == "down", timeout=60)
            seen_down = time.monotonic() - lost
            rescheduled = wait_until(lambda: self.stack.runs_off(ACCOUNTS, 3, WORKER_NODE), timeout=120)
            took = time.monotonic() - lost
            back = time.monotonic()
            self.stack.start_node(WORKER_NODE)
            wait_until(lambda: self.stack.node_state(WORKER_NODE) == "ready", timeout=120)
            rejoined = time.monotonic() - back
        rescheduled_in = f"rescheduled in {took:.1f} s" if rescheduled else "not rescheduled within 120 s"
        notes = (
            f"seen down after {seen_down:.1f} s, {rescheduled_in}; back in the swarm {rejoined:.1f} s after its start"
        )
        self.fault_row(f"`docker kill` of {WORKER_NODE}'s engine", loads, notes)

    def database_node_lost(self) -> None:
        auth = self.stack.customer()
        auth_header = {"Authorization": auth["Authorization"]}
        answers = []
        with self.loads() as loads:
            self.stack.kill_node(DATABASE_NODE)
            for _ in range(6):
                answer, elapsed = timed(
                    lambda: self.stack.get(f"/api/{ORDERS}/orders", headers=auth_header, timeout=30)
                )
                answers.append(f"{answer.status_code} in {elapsed:.1f} s")
                time.sleep(1)
            back = time.monotonic()
            self.stack.start_node(DATABASE_NODE)
            serving = wait_until(lambda: self.stack.answers(f"/api/{ORDERS}/health/"), timeout=240)
            took = time.monotonic() - back
        serves = f"the orders serve again {took:.0f} s after its start" if serving else "orders not back in 240 s"
        notes = f"the orders answered {', '.join(answers)}; {serves}"
        self.fault_row(
            f"`docker kill` of {DATABASE_NODE}'s engine (orders' and notifications' databases)", loads, notes
        )
        wait_until(self.stack.all_running, timeout=180)

    def one_manager_lost(self) -> None:
        """node3 made the swarm's only manager, then lost: what still works, measured."""
        say = self.report.say
        say("## One manager of one, lost")
        say()
        try:
            self.stack.rebalance(ACCOUNTS)  # while node1 still manages: a replica on each node
            self.demote("node2", via="node1")
            self.demote("node1", via="node3")
            # A demotion returns before the raft drops its member: lost then, node3 would wait for a quorum of two.
            if not wait_until(lambda: self.raft_members_seen_by(WORKER_NODE) == 1, timeout=60):
                raise ToolError("node1 and node2 were demoted, but node3's raft still counts them")
            with self.loads() as loads:
                self.stack.kill_node(WORKER_NODE)
                time.sleep(20)
                try:
                    self.stack.scale(ACCOUNTS, 2)  # asked of node1, now a worker
                    decided = "a scale was carried out"
                except ToolError as error:
                    decided = f"`docker service scale` on node1 answers: {str(error).splitlines()[-1].strip()}"
                time.sleep(10)
            back_at = time.monotonic()
            self.stack.start_node(WORKER_NODE)
            back = wait_until(lambda: self.node_ready_seen_by(WORKER_NODE, WORKER_NODE), timeout=120)
            took = time.monotonic() - back_at
            again = f"back in {took:.0f} s" if back else "not back within 120 s"
            say("node1 and node2 demoted, node3 the only manager; then `docker kill` of node3's engine, and 30 s")
            say(f"under load: {loads.sent} requests, {loads.failed} failed ({counts(loads.all_outcomes())}).")
            say(f"The tasks on node1 and node2 go on serving, but nothing decides: {decided}")
            say(f"node3's engine started again: the swarm's manager was {again}. With three managers (the lab's")
            say("shape), one lost leaves two of three, and the swarm decides on: the lost worker node above was a")
            say("manager too, and the suite scales a service while it is gone (tests/test_cluster.py).")
        except ToolError as error:
            say(f"Not measured: {str(error).splitlines()[0]}")
        say()

    def raft_members_seen_by(self, manager: str) -> int:
        return int(self.stack.lab.docker(manager, "info", "--format", "{{len .Swarm.RemoteManagers}}"))

    def node_ready_seen_by(self, manager: str, node: str) -> bool:
        try:
            return self.stack.lab.docker(manager, "node", "inspect", "--format", "{{.Status.State}}", node) == "ready"
        except ToolError:  # its engine is not answering yet
            return False

    def demote(self, node: str, via: str) -> None:
        """Demotes node through via, a manager that stays one."""
        for _ in range(5):  # "update out of sequence": another update of the node came first; try again
            try:
                self.stack.lab.docker(via, "node", "demote", node)
                return
            except ToolError:
                time.sleep(2)
        self.stack.lab.docker(via, "node", "demote", node)

    def down(self) -> None:
        self.stack.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cluster.md")
    arguments = parser.parse_args()
    report = Report()
    for line in report_preamble("The three-node lab: faults of a cluster, measured", "make cluster-drill"):
        report.say(line)
    drill = ClusterDrill(report)
    try:
        drill.run()
    finally:
        drill.down()
    arguments.out.write_text("\n".join(report.lines) + "\n")
    print(f"cluster-drill: wrote {arguments.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
