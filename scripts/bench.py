"""The scaling benchmark (`make bench`): load through the gateway with wrk, one row per configuration.

It starts its own copy of the stack (own project name, free port on 127.0.0.1), reconfigures one service at a
time (workers, threads, replicas, transport, database connections), drives it with wrk for a bounded time per
row, and prints a table of requests per second, p50 and p99 latency, errors and the CPU the driven service used
per request, then the goals: each a ratio within this run, judged on its unrounded value. Besides the stack's
own rows: the limits (a bare WSGI callable and a bare Django view on the same uWSGI socket) and the peers (the
same endpoint on gunicorn and on uWSGI's http-socket, behind proxy_pass), all from the catalog's image
(docker-compose.bench.yml). It writes the tables (bench.md) and a chart (bench.png) into --out. A benchmark, not
a test: nothing here asserts a figure.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from stack import (
    ACCOUNTS,
    CATALOG,
    GATEWAY,
    ROOT,
    Stack,
    ToolError,
    container_cpu_seconds,
    report_preamble,
    wait_until,
)

MINIMAL = f"/api/{CATALOG}/health/"
LOGIN = f"/api/{ACCOUNTS}/login"
USERNAME, PASSWORD = "bench", "bench-password"
# The bench measures what workers and replicas buy, so it lifts what protects the stack from one client (all of
# wrk's connections are one): the gateway's per-client limits and the login service's load shedding.
UNLIMITED = {
    "GATEWAY_LOGIN_RATE": "100000r/s",
    "GATEWAY_WRITES_RATE": "100000r/s",
    "GATEWAY_CONNECTIONS_PER_CLIENT": "4096",
    "LOGINS_AT_ONCE": "64",
}
# The same minimal endpoint served other ways (docker-compose.bench.yml, profile bench-rows): (row, service).
BARE_WSGI = "bare WSGI callable, uWSGI socket, 2 workers"
BARE_DJANGO = "bare Django view, no middleware, uWSGI socket, 2 workers"
GUNICORN = "gunicorn, 2 sync workers, behind proxy_pass over TCP"
HTTP_SOCKET = "uWSGI http-socket, 2 workers, behind proxy_pass over TCP"
OTHERS = [
    (BARE_WSGI, "bare-wsgi"),
    (BARE_DJANGO, "bare-django"),
    (GUNICORN, "peer-gunicorn"),
    (HTTP_SOCKET, "peer-http-socket"),
]


@dataclass
class Row:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    # CPU seconds the containers of the driven service (the gateway for its own row) used per 1,000 requests.
    cpu_seconds_per_1000: float = 0.0


@dataclass
class Goal:
    what: str
    measured: float
    comparison: str  # ">=", "<=", "<" or "=="
    target: float

    def met(self) -> bool:
        """Judged on the unrounded measurement: 1.197 against ">= 1.2" is a miss."""
        if self.comparison == ">=":
            return self.measured >= self.target
        if self.comparison == "<=":
            return self.measured <= self.target
        if self.comparison == "<":
            return self.measured < self.target
        return self.measured == self.target


def found(pattern: str, text: str) -> str:
    """The first group of pattern in wrk's output; wrk that printed something else is an error, said plainly."""
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"wrk's output has no {pattern!r}:\n{text}")
    return match.group(1)


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]


def parse_wrk(name: str, output: str) -> Row:
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(count) for count in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return Row(
        name=name,
        requests_per_second=float(found(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=parse_duration_ms(found(r"\s50%\s+(\S+)", output)),
        p99_ms=parse_duration_ms(found(r"\s99%\s+(\S+)", output)),
        requests=int(found(r"(\d+) requests in", output)),
        errors=errors,
    )


def wrk_script(*, body: dict | None = None, delay_ms: float | None = None) -> str:
    """A wrk Lua script: a JSON POST body, and/or a pause before each request (to hold a lower rate)."""
    lines = []
    if body is not None:
        lines += [
            'wrk.method = "POST"',
            f"wrk.body = '{json.dumps(body)}'",
            'wrk.headers["Content-Type"] = "application/json"',
        ]
    if delay_ms is not None:
        lines += [f"function delay() return {delay_ms:.3f} end"]
    return "\n".join(lines) + "\n"


def run_wrk(url: str, *, connections: int, script: str, seconds: int, name: str = "") -> Row:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command += ["-s", lua.name, url]
        output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return parse_wrk(name, output.stdout)


def rate_script(url: str, target_rate: float, connections: int) -> str:
    """A wrk script that holds about target_rate: each connection pauses between requests, the pause calibrated
    in a first short pass so that pause plus latency gives the rate."""
    pause_ms = 1000 * connections / target_rate
    calibration = run_wrk(url, connections=connections, script=wrk_script(delay_ms=pause_ms), seconds=2)
    latency_ms = 1000 * connections / calibration.requests_per_second - pause_ms
    return wrk_script(delay_ms=max(0.0, 1000 * connections / target_rate - latency_ms))


class Bench:
    def __init__(self, seconds: int, connections: int, smoke: bool = False):
        self.seconds = seconds
        self.smoke = smoke
        self.connections = connections
        self.stack = Stack(f"microstack-bench-{uuid.uuid4().hex[:8]}", UNLIMITED, ("docker-compose.bench.yml",))
        self.rows: list[Row] = []

    def wrk_once(self, path: str, *, connections: int, script: str, seconds: int, name: str = "") -> Row:
        return run_wrk(self.stack.base_url + path, connections=connections, script=script, seconds=seconds, name=name)

    def cpu_seconds(self, service: str) -> float:
        """CPU time the running containers of service have used so far (their cgroups' total)."""
        return sum(container_cpu_seconds(container) for container in self.stack.containers(service))

    def wrk(self, name: str, path: str, *, service: str, connections: int | None = None, script: str = "") -> Row:
        """One recorded row, with the CPU service used per request while it ran."""
        cpu_before = self.cpu_seconds(service)
        row = self.wrk_once(
            path, connections=connections or self.connections, script=script, seconds=self.seconds, name=name
        )
        row.cpu_seconds_per_1000 = 1000 * (self.cpu_seconds(service) - cpu_before) / max(row.requests, 1)
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row

    def rated(self, path: str, target_rate: float, connections: int = 16) -> Row:
        """A row at about target_rate (the calibrating pass is not recorded)."""
        return self.wrk(
            "minimal endpoint at 70% of its peak",
            path,
            service=CATALOG,
            connections=connections,
            script=rate_script(self.stack.base_url + path, target_rate, connections),
        )

    def others(self) -> None:
        """The limits and the peers, each on the catalog's minimal endpoint; they run only for their rows."""
        services = [service for _, service in OTHERS]
        profile = ("--profile", "bench-rows")
        self.stack.compose(*profile, "up", "--detach", "--wait", *services, timeout=600)
        try:
            # The gateway routes a new socket within its watcher's pass (a second).
            paths = [f"/api/{service}/health/" for service in services]
            if not wait_until(lambda: all(self.stack.answers(path) for path in paths), timeout=30):
                raise ToolError(f"not all of {', '.join(paths)} answer 200 through the gateway")
            for (name, service), path in zip(OTHERS, paths, strict=True):
                self.wrk(name, path, service=service)
        finally:
            self.stack.compose(*profile, "rm", "--stop", "--force", *services, timeout=120)

    def configure(self, **environment: str) -> None:
        """Recreates what the change touches (compose compares the configuration) and waits for health."""
        self.stack.environment = {**UNLIMITED, **environment}
        self.stack.compose("up", "--detach", "--wait", timeout=600)

    def replicas(self, service: str, count: int) -> None:
        self.stack.scale(service, count)

    def run(self) -> None:
        print(f"Starting the bench stack ({self.stack.project}) ...", flush=True)
        self.stack.up()
        try:
            self.stack.post("/api/service1/register", {"username": USERNAME, "password": PASSWORD})
            self.measure()
        finally:
            self.stack.down()

    def measure(self) -> None:
        login = wrk_script(body={"username": USERNAME, "password": PASSWORD})
        print(header(), flush=True)
        self.wrk("gateway /healthz (ceiling)", "/healthz", service=GATEWAY)
        if self.smoke:  # one row of each kind (plain, others, rated, reconfigured, replicas): to prove each runs
            self.wrk("minimal endpoint, 2 workers", MINIMAL, service=CATALOG)
            self.others()
            self.rated(MINIMAL, 0.7 * self.rows[-1].requests_per_second)
            self.configure(SERVICE1_PROCESSES="1", SERVICE1_THREADS="1")
            self.wrk("login, 1 worker", LOGIN, service=ACCOUNTS, connections=8, script=login)
            self.replicas(ACCOUNTS, 2)
            self.wrk("login, 2 replicas of 1 worker", LOGIN, service=ACCOUNTS, connections=8, script=login)
            return

        for workers in (1, 2):
            self.configure(SERVICE2_PROCESSES=str(workers))
            self.wrk(f"minimal endpoint, {workers} worker{'s' * (workers > 1)}", MINIMAL, service=CATALOG)
        self.rated(MINIMAL, 0.7 * self.rows[-1].requests_per_second)
        self.others()
        self.configure(SERVICE2_THREADS="1")
        self.wrk("minimal endpoint, 2 workers, 1 thread each", MINIMAL, service=CATALOG)
        self.configure(DB_CONN_MAX_AGE="0")
        self.wrk("minimal endpoint, 2 workers, a new database connection per request", MINIMAL, service=CATALOG)
        self.configure(ACCESS_LOG="false")
        self.wrk("minimal endpoint, 2 workers, no service access log", MINIMAL, service=CATALOG)

        for workers in (1, 2, 4):
            self.configure(SERVICE1_PROCESSES=str(workers), SERVICE1_THREADS="1")
            name = f"login, {workers} worker{'s' * (workers > 1)}"
            self.wrk(name, LOGIN, service=ACCOUNTS, connections=8, script=login)
        for replicas in (2, 3):
            self.configure(SERVICE1_PROCESSES="1", SERVICE1_THREADS="1")
            self.replicas(ACCOUNTS, replicas)
            self.wrk(f"login, {replicas} replicas of 1 worker", LOGIN, service=ACCOUNTS, connections=8, script=login)
        self.replicas(ACCOUNTS, 1)

        self.configure(SERVICE2_PROCESSES="2", SERVICE_TRANSPORT="tcp")
        self.wrk("minimal endpoint, 2 workers, TCP", MINIMAL, service=CATALOG)


def header() -> str:
    return (
        "| row | req/s | p50 ms | p99 ms | requests | errors | CPU s / 1,000 requests |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )


def format_row(row: Row) -> str:
    return (
        f"| {row.name} | {row.requests_per_second:.0f} | {row.p50_ms:.2f} | {row.p99_ms:.2f} "
        f"| {row.requests} | {row.errors} | {row.cpu_seconds_per_1000:.3f} |"
    )


RATED = "minimal endpoint at 70% of its peak"
MINIMAL_2 = "minimal endpoint, 2 workers"
# The README's goals that are ratios of two rows' rates: (what, numerator row, denominator row, comparison, target).
RATE_GOALS = [
    ("minimal endpoint (2 workers) / gateway ceiling", MINIMAL_2, "gateway /healthz (ceiling)", ">=", 0.25),
    ("login 2 workers / 1 worker", "login, 2 workers", "login, 1 worker", ">=", 1.8),
    ("login 2 replicas / 1 worker", "login, 2 replicas of 1 worker", "login, 1 worker", ">=", 1.8),
    ("unix socket / TCP (minimal, 2 workers)", MINIMAL_2, "minimal endpoint, 2 workers, TCP", ">=", 1.2),
    ("minimal endpoint / gunicorn behind proxy_pass", MINIMAL_2, GUNICORN, ">=", 1.3),
    ("minimal endpoint / uWSGI http-socket behind proxy_pass", MINIMAL_2, HTTP_SOCKET, ">=", 1.0),
]
# What servicekit costs over Django alone, in the catalog's CPU per request: (what, numerator, denominator, target).
CPU_GOALS = [("servicekit's CPU per request / the bare Django view's", MINIMAL_2, BARE_DJANGO, 1.15)]
# What one change buys the minimal endpoint: its row is MINIMAL_2 with the change appended.
CHANGES = ["1 thread each", "a new database connection per request", "no service access log"]


def rate_ratio(top: Row, bottom: Row) -> float:
    return top.requests_per_second / bottom.requests_per_second


def goals(rows: dict[str, Row]) -> list[Goal]:
    """The README's goals, as ratios within this one run (those whose rows were measured)."""
    found = [
        Goal(what, rate_ratio(rows[top], rows[bottom]), comparison, target)
        for what, top, bottom, comparison, target in RATE_GOALS
        if top in rows and bottom in rows
    ]
    found += [
        Goal(what, rows[top].cpu_seconds_per_1000 / rows[bottom].cpu_seconds_per_1000, "<=", target)
        for what, top, bottom, target in CPU_GOALS
        if top in rows and bottom in rows and rows[bottom].cpu_seconds_per_1000 > 0
    ]
    if RATED in rows:
        found.append(Goal("p99 ms of the minimal endpoint at 70% of its peak", rows[RATED].p99_ms, "<", 10))
    found.append(Goal("errors in all rows", sum(row.errors for row in rows.values()), "==", 0))
    return found


def effects(rows: dict[str, Row]) -> list[tuple[str, float]]:
    """What one change buys on the minimal endpoint, as a ratio of requests per second (the README's claims)."""
    return [
        (f"{change} / as configured", rate_ratio(rows[f"{MINIMAL_2}, {change}"], rows[MINIMAL_2]))
        for change in CHANGES
        if f"{MINIMAL_2}, {change}" in rows
    ]


def report(rows: list[Row]) -> str:
    by_name = {row.name: row for row in rows}
    lines = [header(), *(format_row(row) for row in rows), ""]
    lines += ["| goal | measured | target | met |", "| --- | ---: | --- | --- |"]
    for goal in goals(by_name):
        verdict = "yes" if goal.met() else "MISSED"
        lines.append(f"| {goal.what} | {goal.measured:.3f} | {goal.comparison} {goal.target:g} | {verdict} |")
    lines += ["", "| effect on the minimal endpoint (req/s ratio) | measured |", "| --- | ---: |"]
    lines += [f"| {what} | {ratio:.3f} |" for what, ratio in effects(by_name)]
    return "\n".join(lines) + "\n"


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (rates, latencies) = pyplot.subplots(1, 2, figsize=(13, 5), sharey=True)
    names = [row.name for row in rows]
    rates.barh(names, [row.requests_per_second for row in rows], color="#4c72b0")
    rates.set_xscale("log")
    rates.set_xlabel("requests per second (log scale)")
    rates.invert_yaxis()
    latencies.barh(names, [row.p99_ms for row in rows], color="#dd8452", label="p99")
    latencies.barh(names, [row.p50_ms for row in rows], color="#55a868", label="p50")
    latencies.set_xscale("log")
    latencies.set_xlabel("latency, ms (log scale)")
    latencies.legend()
    figure.suptitle("microstack through its gateway (2 cores, wrk on the same machine)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="load time per row")
    parser.add_argument("--smoke", action="store_true", help="one row of each kind, to prove it runs (CI)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for the HTTP rows")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where bench.md and bench.png go")
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is missing (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    bench = Bench(arguments.seconds, arguments.connections, arguments.smoke)
    bench.run()
    table = report(bench.rows)
    print("\n" + table)
    arguments.out.mkdir(parents=True, exist_ok=True)
    preamble = report_preamble("The scaling benchmark", "make bench")
    (arguments.out / "bench.md").write_text("\n".join(preamble) + "\n" + table)
    chart(bench.rows, arguments.out / "bench.png")
    print(f"wrote {arguments.out / 'bench.md'} and {arguments.out / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
