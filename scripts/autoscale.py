"""Scales one service's replicas on what Prometheus says of it (`make autoscale SERVICE=service1 MIN=1 MAX=4`).

Every INTERVAL seconds it reads three figures of the service from the stack's Prometheus (`make up METRICS=1`; on
Swarm `make swarm-up METRICS=1`, through its task; prometheus/rules.yml): its saturation (the share of its workers'
threads' time spent serving requests), its rate and its p99. Then, with hysteresis:
- out: once the saturation has stayed above OUT_ABOVE for OUT_AFTER seconds, one replica more, never past MAX;
- in: once it has stayed below IN_BELOW for IN_AFTER seconds (a longer quiet: a lull is not the end of a load),
  one replica fewer, never under MIN;
- enough: SETTLE seconds after adding a replica (its figures are over a window that must hold it), it compares
  the rate and the p99 with those before, unless the load has ended meanwhile. If neither improved by HELPED,
  the last replica did not help (the machine, not the service's workers, is the limit: a third replica on 2
  cores), and it adds none while the load lasts, saying so; a scale-in (the load fell) lifts that.
Each change goes through make scale's path (scripts/scale.py: new replicas start, those removed drain first, no
request fails), or `docker service scale` on Swarm (--swarm). Each decision is one line on stdout, and the last
ten are listed on the status page.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import docker
import requests
from docker.models.containers import Container

from project import (
    PROMETHEUS,
    ROOT,
    SERVICES,
    STATUS,
    ComposeProject,
    ToolError,
    compose_project_name,
    positive,
    tool_main,
)

# The service's figures, as prometheus/rules.yml records them.
SATURATION = "service:microstack_uwsgi_saturation:ratio30s"
RATE = "service:microstack_uwsgi_requests:rate30s"
P99 = "service:microstack_gateway_response_duration_seconds:p99_1m"


@dataclass(frozen=True)
class Sample:
    """A service's figures at one moment; None where Prometheus has none yet (no traffic, no scrape)."""

    at: float
    saturation: float | None
    rate: float | None
    p99: float | None


@dataclass(frozen=True)
class Decision:
    replicas: int  # the same as now when the decision is only said
    why: str


# The status page's user and the sockets' group (docker-compose.yml): it reads what is written for it.
STATUS_OWNER = (10000, 10001)


class StatusPage:
    """Shows the last decisions on the status page: autoscale.json in its container's own volume, which it reads
    with a bound on its size (status/statuspage/collector.py)."""

    def __init__(self, containers: Callable[[], list[Container]], kept: int = 10):
        self.containers = containers
        self.decisions: deque[dict] = deque(maxlen=kept)

    def show(self, service: str, decision: Decision) -> None:
        self.decisions.append({"at": time.time(), "service": service, **asdict(decision)})
        content = json.dumps(list(self.decisions)).encode()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            member = tarfile.TarInfo("autoscale.json")
            member.size, member.mode, member.mtime = len(content), 0o640, int(time.time())
            member.uid, member.gid = STATUS_OWNER
            tar.addfile(member, io.BytesIO(content))
        for container in self.containers():
            try:
                container.put_archive("/run/uwsgi", archive.getvalue())
            except docker.errors.APIError as error:  # the page is down or going: the lines above still say it
                say(f"the status page did not take the decision ({error.explanation})")


@dataclass
class Policy:
    """When to add or remove a replica, from a service's samples: the hysteresis and the check that the last
    replica added helped. Decides only: the caller scales."""

    minimum: int
    maximum: int
    out_above: float = 0.8
    out_after: float = 30.0
    in_below: float = 0.3
    in_after: float = 90.0
    settle: float = 35.0
    helped: float = 0.10
    hot_since: float | None = None
    quiet_since: float | None = None
    added: tuple[Sample, int] | None = None  # the sample before the last scale-out, and the replicas after it
    ceiling: int | None = None  # replicas past which one more did not help, while the load lasts
    said_ceiling: bool = field(default=False)

    def decide(self, sample: Sample, replicas: int) -> Decision | None:
        if replicas < self.minimum or replicas > self.maximum:
            bounded = min(max(replicas, self.minimum), self.maximum)
            return Decision(bounded, f"{replicas} replica(s) is outside MIN={self.minimum} MAX={self.maximum}")
        if self.added is not None:
            before, after = self.added
            if sample.at - before.at < self.settle:
                return None  # the figures do not hold the new replica yet
            self.added = None
            ended = sample.saturation is not None and sample.saturation < self.in_below  # nothing left to judge by
            if not ended and not improved(before, sample, self.helped):
                self.ceiling = after - 1
                self.said_ceiling = True
                return Decision(
                    replicas,
                    f"replica {after} did not help ({figures(before)} before, {figures(sample)} now): no more "
                    "while the load lasts",
                )
        if sample.saturation is None:
            return None
        if sample.saturation > self.out_above:
            self.quiet_since = None
            self.hot_since = sample.at if self.hot_since is None else self.hot_since
            if sample.at - self.hot_since < self.out_after:
                return None
            if replicas >= self.maximum or (self.ceiling is not None and replicas >= self.ceiling):
                if self.said_ceiling:
                    return None
                self.said_ceiling = True
                limit = f"MAX={self.maximum}" if replicas >= self.maximum else "the last replica did not help"
                return Decision(replicas, f"saturated ({figures(sample)}), but held at {replicas}: {limit}")
            self.hot_since = None
            self.added = (sample, replicas + 1)
            return Decision(replicas + 1, f"saturated for {self.out_after:g} s ({figures(sample)})")
        self.hot_since = None
        if sample.saturation < self.in_below:
            self.quiet_since = sample.at if self.quiet_since is None else self.quiet_since
            if sample.at - self.quiet_since < self.in_after or replicas <= self.minimum:
                return None
            self.quiet_since = None
            self.ceiling, self.said_ceiling = None, False
            return Decision(replicas - 1, f"quiet for {self.in_after:g} s ({figures(sample)})")
        self.quiet_since = None
        return None


def improved(before: Sample, after: Sample, by: float) -> bool:
    """Whether the rate rose or the p99 fell by at least that share."""
    rate_rose = before.rate is not None and after.rate is not None and after.rate >= before.rate * (1 + by)
    p99_fell = before.p99 is not None and after.p99 is not None and after.p99 <= before.p99 * (1 - by)
    return rate_rose or p99_fell


def figures(sample: Sample) -> str:
    def shown(value: float | None, form: str) -> str:
        return "-" if value is None else format(value, form)

    return (
        f"saturation {shown(sample.saturation, '.2f')}, {shown(sample.rate, '.1f')} requests/s, "
        f"p99 {shown(None if sample.p99 is None else sample.p99 * 1000, '.0f')} ms"
    )


class Prometheus:
    """The stack's Prometheus over its HTTP API, which Compose publishes on 127.0.0.1."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.http = requests.Session()

    def result(self, query: str) -> list[dict]:
        try:
            response = self.http.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5)
            response.raise_for_status()
        except requests.RequestException as error:
            raise ToolError(
                f"Prometheus at {self.url} did not answer ({error}): is the stack up with METRICS=1?"
            ) from None
        return response.json()["data"]["result"]

    def sample(self, service: str) -> Sample:
        """The three figures in one query (one process in the task, on Swarm)."""
        records = "|".join((SATURATION, RATE, P99))
        result = self.result(f'{{__name__=~"{records}",service="{service}"}}')
        values = {entry["metric"]["__name__"]: float(entry["value"][1]) for entry in result}
        # NaN: no requests in the window.
        known = {name: value for name, value in values.items() if value == value}
        return Sample(time.time(), known.get(SATURATION), known.get(RATE), known.get(P99))


class PrometheusTask(Prometheus):
    """The Swarm stack's Prometheus, which publishes no port (swarm/docker-stack.metrics.yml): each query is
    `promtool query` in its task, on this engine, which is the gateway's node's."""

    def __init__(self, stack: str):
        self.service = f"{stack}_{PROMETHEUS}"
        self.client = docker.from_env()

    def result(self, query: str) -> list[dict]:
        tasks = self.client.containers.list(filters={"label": f"com.docker.swarm.service.name={self.service}"})
        if not tasks:
            raise ToolError(
                f"no task of {self.service} runs on this engine: is the stack up with METRICS=1, and is this engine "
                "(DOCKER_HOST) its gateway's node's?"
            )
        ran = tasks[0].exec_run(["promtool", "query", "instant", "-o", "json", "http://127.0.0.1:9090", query])
        if ran.exit_code != 0:
            raise ToolError(f"{self.service} did not answer: {ran.output.decode().strip()}")
        return json.loads(ran.output)


class ComposeReplicas:
    """A service's replicas in the running Compose project, changed as `make scale` changes them."""

    def __init__(self, service: str):
        self.service = service
        self.project = ComposeProject(compose_project_name())

    def count(self) -> int:
        return len(self.project.containers(self.service))

    def scale(self, replicas: int) -> None:
        command = [sys.executable, str(ROOT / "scripts" / "scale.py"), self.service, "--replicas", str(replicas)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise ToolError(f"make scale failed: {result.stderr.strip() or result.stdout.strip()}")


class SwarmReplicas:
    """A service's replicas in the Swarm stack (`make swarm-up`): its tasks, stopped by Swarm as it stops them
    (each drains first: its stop grace period)."""

    def __init__(self, service: str, stack: str):
        self.name = f"{stack}_{service}"

    def count(self) -> int:
        inspected = subprocess.run(
            ["docker", "service", "inspect", self.name], capture_output=True, text=True, timeout=60
        )
        if inspected.returncode != 0:
            raise ToolError(f"no Swarm service {self.name}: {inspected.stderr.strip()}")
        return int(json.loads(inspected.stdout)[0]["Spec"]["Mode"]["Replicated"]["Replicas"])

    def scale(self, replicas: int) -> None:
        result = subprocess.run(
            ["docker", "service", "scale", "--detach=false", f"{self.name}={replicas}"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if result.returncode != 0:
            raise ToolError(f"docker service scale failed: {result.stderr.strip()}")


def status_containers(swarm_stack: str | None) -> Callable[[], list[Container]]:
    """The status page's running containers: the Compose project's, or on Swarm its task's on this engine."""
    if swarm_stack:
        label = f"com.docker.swarm.service.name={swarm_stack}_{STATUS}"
        return lambda: docker.from_env().containers.list(filters={"label": label})
    project = ComposeProject(compose_project_name())
    return lambda: project.containers(STATUS)


def say(message: str) -> None:
    print(f"autoscale: {time.strftime('%H:%M:%S')} {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help=f"one of {', '.join(SERVICES)}")
    parser.add_argument("--min", type=positive, default=1, dest="minimum", help="fewest replicas (1)")
    parser.add_argument("--max", type=positive, default=4, dest="maximum", help="most replicas (4)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between looks (5)")
    defaults = Policy(1, 1)
    for name, what in [
        ("out_above", "saturation over which the service is loaded"),
        ("out_after", "seconds it must stay loaded before a replica is added"),
        ("in_below", "saturation under which the service is quiet"),
        ("in_after", "seconds it must stay quiet before a replica is removed"),
        ("settle", "seconds after adding a replica before judging whether it helped"),
    ]:
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=default, help=f"{what} ({default:g})")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: Ctrl-C)")
    parser.add_argument("--swarm", action="store_true", help="the Swarm stack's service, not Compose's")
    port = os.environ.get("PROMETHEUS_PORT") or "9090"
    parser.add_argument(
        "--prometheus",
        help=f"Prometheus's URL (http://127.0.0.1:{port}; on Swarm, none: promtool in the stack's Prometheus task)",
    )
    arguments = parser.parse_args()

    def autoscale() -> None:
        if arguments.service not in SERVICES:
            raise ToolError(f"unknown service {arguments.service!r}: choose one of {', '.join(SERVICES)}")
        if arguments.minimum > arguments.maximum:
            raise ToolError(f"MIN={arguments.minimum} is more than MAX={arguments.maximum}")
        stack = os.environ.get("STACK_NAME") or compose_project_name()  # swarm.py's, on Swarm
        if arguments.prometheus or not arguments.swarm:
            prometheus = Prometheus(arguments.prometheus or f"http://127.0.0.1:{port}")
        else:
            prometheus = PrometheusTask(stack)
        replicas = SwarmReplicas(arguments.service, stack) if arguments.swarm else ComposeReplicas(arguments.service)
        policy = Policy(
            arguments.minimum,
            arguments.maximum,
            out_above=arguments.out_above,
            out_after=arguments.out_after,
            in_below=arguments.in_below,
            in_after=arguments.in_after,
            settle=arguments.settle,
        )
        status_page = StatusPage(status_containers(stack if arguments.swarm else None))
        say(
            f"{arguments.service}: {replicas.count()} replica(s), MIN={arguments.minimum} MAX={arguments.maximum}; "
            f"out above {policy.out_above:g} for {policy.out_after:g} s, in below {policy.in_below:g} for "
            f"{policy.in_after:g} s"
        )
        stop_at = None if arguments.seconds is None else time.monotonic() + arguments.seconds
        while stop_at is None or time.monotonic() < stop_at:
            now = replicas.count()
            decision = policy.decide(prometheus.sample(arguments.service), now)
            if decision is not None:
                change = "" if decision.replicas == now else f"{now} -> {decision.replicas} replicas: "
                say(f"{arguments.service}: {change}{decision.why}")
                status_page.show(arguments.service, decision)
                if decision.replicas != now:
                    try:
                        replicas.scale(decision.replicas)
                        say(f"{arguments.service}: {decision.replicas} replica(s) serving")
                    except ToolError as error:  # a loaded replica may fail its healthcheck: look again, and go on
                        say(f"{arguments.service}: scaling to {decision.replicas} did not finish ({error})")
            time.sleep(arguments.interval)

    return tool_main("autoscale", autoscale)


if __name__ == "__main__":
    sys.exit(main())
