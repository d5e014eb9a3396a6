"""What the stack weighs and costs at rest (`make sizes`): image sizes, start time, idle CPU, a one-service rebuild,
and what Prometheus adds (METRICS=1).

On its own copy of the stack (own project name, free port on 127.0.0.1): the size of each image it builds, the
time `docker compose up --wait` takes from built images to every container healthy (fresh volumes, so migrations
run), the CPU the idle stack uses (its containers' cgroups; the Docker engine's own share, which runs every
healthcheck, apart), and the time to rebuild one service's image after a change to its code. It prints the figures
and the goals, each judged on its unrounded value, and writes them to docs/sizes.md. It asserts nothing.

Start time and idle CPU are measured the way make runs the stack on this engine. An engine without the
healthcheck's start_interval (before Docker 25) checks every 2 s throughout; there they are measured a second time
as docker-compose.start-interval.yml would run them: the start with checks every second, the idle stack with
each container checked at the interval that file gives it (30 s and up, each service its own).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import Goal

# Run as a program, from this tree or a copy of it: the tools' shared module (scripts/), the suite's
# harness (tests/support/), the Swarm and lab tools.
sys.path[:0] = [
    str(Path(__file__).resolve().parents[1] / folder) for folder in ("scripts", "tests/support", "swarm", "lab")
]

from project import (
    CATALOG,
    GATEWAY,
    METRICS_PROFILE,
    PROMETHEUS,
    ROOT,
    SERVICES,
    STATUS,
    ToolError,
    intervals_at_rest,
    run,
    tool_main,
    write_health_intervals,
)
from reports import report_preamble
from stack import DATABASE_SERVICES, Stack, container_cpu_seconds, timed, wait_until

SERVICE_IMAGE_LIMIT_MB = 150
GATEWAY_IMAGE_LIMIT_MB = 100
START_LIMIT_SECONDS = 8
IDLE_LIMIT_PERCENT = 2
REBUILD_LIMIT_SECONDS = 10
# The engine's processes: the daemon, containerd, and the shims that run each container's healthchecks (runc).
ENGINE_PROCESSES = ("dockerd", "containerd")
ENGINE_PROCESS_PREFIX = "containerd-shim"


def megabytes(size_bytes: int) -> float:
    """As `docker images` shows sizes: in millions of bytes."""
    return size_bytes / 1e6


def engine_cpu_seconds() -> float:
    """CPU time the Docker engine's processes and the children they reaped (runc, healthchecks) have used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for process in Path("/proc").glob("[0-9]*"):
        try:
            name = (process / "comm").read_text().strip()
            if name in ENGINE_PROCESSES or name.startswith(ENGINE_PROCESS_PREFIX):
                # utime, stime, cutime, cstime: fields 14 to 17, counted after the parenthesised command name.
                fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(field) for field in fields[11:15])
        except (OSError, IndexError, ValueError):  # gone meanwhile, or not ours to read
            continue
    return total / ticks


# The containers whose healthcheck make sizes sets where the engine lacks start_interval.
CHECKED = [*SERVICES, GATEWAY, STATUS]


def in_words(intervals: dict[str, float]) -> str:
    """How often a started container is checked, at these intervals: "every 30-35 s"."""
    shortest, longest = min(intervals.values()), max(intervals.values())
    return f"every {shortest:g} s" if shortest == longest else f"every {shortest:g}-{longest:g} s"


def engine_has_start_interval() -> bool:
    return subprocess.run([ROOT / "scripts" / "engine-has-start-interval.sh"]).returncode == 0


class Sizes:
    def __init__(self, idle_seconds: int, directory: Path):
        self.idle_seconds = idle_seconds
        self.start_interval = engine_has_start_interval()
        # Where this engine lacks start_interval: every healthcheck's interval from this file (2 s, as the images
        # say, until emulated_start_interval), to measure what start_interval would give.
        self.interval_file = directory / "health-interval.yml"
        write_health_intervals(self.interval_file, dict.fromkeys(CHECKED, 2))
        self.at_rest = intervals_at_rest()  # as docker-compose.start-interval.yml has a started container checked
        override = "docker-compose.start-interval.yml" if self.start_interval else str(self.interval_file)
        self.stack = Stack(f"microstack-sizes-{uuid.uuid4().hex[:8]}", overrides=(override,))
        self.lines: list[str] = []
        self.goals: list[Goal] = []
        self.idle_percent: dict[str, dict[str, float]] = {}  # by variant ("": as make runs it), by container

    def say(self, line: str = "") -> None:
        self.lines.append(line)
        print(line, flush=True)

    def run(self) -> None:
        print(f"Building the stack's images ({self.stack.project}) ...", file=sys.stderr, flush=True)
        try:
            self.stack.compose("build", timeout=1800)
            self.image_sizes()
            checks = (
                f"every second while starting, then {in_words(self.at_rest)}" if self.start_interval else "every 2 s"
            )
            self.say(f"**As make runs it on this engine** (healthchecks {checks}):")
            self.say()
            self.start_time()
            self.check_cost()
            self.idle_cpu()
            if not self.start_interval:
                self.emulated_start_interval()
            self.rebuild_time()
            self.with_prometheus()
        finally:
            self.stack.down()
        self.say()
        self.say("| goal | measured | target | met |")
        self.say("| --- | ---: | --- | --- |")
        for goal in self.goals:
            verdict = "yes" if goal.met() else "MISSED"
            self.say(f"| {goal.what} | {goal.measured:.2f} | {goal.comparison} {goal.target:g} | {verdict} |")

    def image_sizes(self) -> None:
        self.say("| image | MB |")
        self.say("| --- | ---: |")
        for service in [*SERVICES, GATEWAY]:
            size = megabytes(self.stack.docker.images.get(self.stack.image_of(service)).attrs["Size"])
            self.say(f"| {service} | {size:.1f} |")
            limit = GATEWAY_IMAGE_LIMIT_MB if service == GATEWAY else SERVICE_IMAGE_LIMIT_MB
            self.goals.append(Goal(f"{service} image, MB", size, "<=", limit))
        self.say()

    def emulated_start_interval(self) -> None:
        """What docker-compose.start-interval.yml gives an engine that has start_interval, measured here: the
        start with every check a second apart, the idle stack with each container checked at its interval there."""
        self.say("**With start_interval** (Docker 25 and later, docker-compose.start-interval.yml), measured on this")
        self.say(
            f"engine with the intervals it would use: every second for the start, {in_words(self.at_rest)} at rest:"
        )
        self.say()
        self.stack.take_down("--timeout", "10", volumes=True)
        write_health_intervals(self.interval_file, dict.fromkeys(CHECKED, 1))
        self.start_time(" (start_interval)")
        write_health_intervals(self.interval_file, self.at_rest)
        self.stack.compose("up", "--detach", timeout=300)
        if not wait_until(self.all_healthy, timeout=120, interval=1):
            raise ToolError(f"the stack, checked {in_words(self.at_rest)}, did not become healthy within 120 s")
        # A check cycle passes first: a worker's first requests after a start import what it has not yet.
        self.idle_cpu(" (start_interval)", minimum_seconds=60, settle_seconds=35)

    def check_cost(self, times: int = 5) -> None:
        """What one healthcheck costs the catalog's container: the engine starting a process in it (an exec of
        `true`), and the healthcheck itself, which also asks the service for its health; medians of a few."""
        container = self.stack.container(CATALOG)

        def cost_ms(command: list[str]) -> float:
            costs = []
            for _ in range(times):
                before = container_cpu_seconds(container)
                container.exec_run(command)
                costs.append(1000 * (container_cpu_seconds(container) - before))
            return statistics.median(costs)

        healthcheck = container.image.attrs["Config"]["Healthcheck"]["Test"][1:]  # after "CMD": the image's own
        self.say(f"One healthcheck of {CATALOG}, CPU of its container: {cost_ms(healthcheck):.0f} ms,")
        self.say(f"of which {cost_ms(['true']):.0f} ms is any process the engine starts there (`docker exec true`).")
        self.say()

    def all_healthy(self) -> bool:
        """Every container of the stack has passed its healthcheck (KeyError for one that has none)."""
        return all(self.stack.is_healthy(service) for service in [*SERVICES, *DATABASE_SERVICES, GATEWAY, STATUS])

    def start_time(self, variant: str = "") -> None:
        _, took = timed(lambda: self.stack.compose("up", "--detach", "--wait", "--wait-timeout", "120", timeout=300))
        # --wait returns at once for a container without a healthcheck: each must have passed one.
        try:
            healthy = self.all_healthy()
        except KeyError:
            healthy = False
        if not healthy:
            raise ToolError("a container has no healthcheck, or has not passed it")
        self.say(f"`docker compose up --wait`, built images, fresh volumes: {took:.1f} s")
        self.say()
        self.goals.append(Goal(f"start to every container healthy{variant}, s", took, "<=", START_LIMIT_SECONDS))

    def container_cpu_seconds(self) -> dict[str, float]:
        """CPU time each running container of the stack has used so far (its cgroup's total)."""
        return {container.name: container_cpu_seconds(container) for container in self.stack.containers()}

    def idle_cpu(self, variant: str = "", minimum_seconds: int = 0, settle_seconds: int = 10) -> None:
        time.sleep(settle_seconds)  # what starting leaves behind (first requests, imports) is not idleness
        containers_before, engine_before, started = self.container_cpu_seconds(), engine_cpu_seconds(), time.monotonic()
        time.sleep(max(self.idle_seconds, minimum_seconds))
        containers_after, engine_after = self.container_cpu_seconds(), engine_cpu_seconds()
        elapsed = time.monotonic() - started
        self.say(f"Idle CPU over {elapsed:.0f} s, % of one core:")
        self.say()
        self.say("| container | % |")
        self.say("| --- | ---: |")
        total = 0.0
        idle_percent = self.idle_percent[variant] = {}
        for name in sorted(containers_after):
            percent = 100 * (containers_after[name] - containers_before.get(name, containers_after[name])) / elapsed
            total += percent
            idle_percent[name.removeprefix(self.stack.project + "-")] = percent
            self.say(f"| {name.removeprefix(self.stack.project + '-')} | {percent:.2f} |")
        self.say(f"| **the stack's containers** | **{total:.2f}** |")
        engine = 100 * (engine_after - engine_before) / elapsed
        self.say(f"| the Docker engine (all of it, healthchecks included) | {engine:.2f} |")
        self.say()
        what = f"idle CPU of the stack's containers{variant}, % of one core"
        self.goals.append(Goal(what, total, "<", IDLE_LIMIT_PERCENT))

    def rebuild_time(self) -> None:
        """A copy of the tree, built, then built again after a change to one service's code: the second build."""
        with tempfile.TemporaryDirectory() as directory:
            tree = Path(directory) / "tree"
            ignored = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*_cache", "docs", "tests")
            shutil.copytree(ROOT, tree, ignore=ignored)
            image = self.stack.image_of(CATALOG)
            command = ("docker", "compose", "--project-name", self.stack.project, "build", CATALOG)
            run(*command, cwd=tree, timeout=900)
            before = self.stack.docker.images.get(image).id
            with (tree / CATALOG / "config" / "urls.py").open("a") as code:
                code.write(f"# changed at {time.time()}\n")
            _, took = timed(lambda: run(*command, cwd=tree, timeout=900))
            if self.stack.docker.images.get(image).id == before:
                raise ToolError(f"changing {CATALOG}'s code did not change its image")
        self.say(f"Rebuild of {CATALOG}'s image after a change to its code: {took:.1f} s")
        self.goals.append(Goal("rebuild after a one-service code change, s", took, "<=", REBUILD_LIMIT_SECONDS))

    def with_prometheus(self) -> None:
        """What the metrics profile costs (make up METRICS=1), as make runs it on this engine: its start to every
        container healthy, the series one scrape holds, and the status container's CPU while Prometheus scrapes
        it every 5 s, against the same container's in the first idle measurement, when nothing scraped it."""
        self.stack.take_down("--timeout", "10", volumes=True)
        if not self.start_interval:  # emulated_start_interval left its own intervals there
            write_health_intervals(self.interval_file, dict.fromkeys(CHECKED, 2))
        profile = ["--profile", METRICS_PROFILE]
        _, took = timed(
            lambda: self.stack.compose(*profile, "up", "--detach", "--wait", "--wait-timeout", "120", timeout=300)
        )
        series = 'count({__name__=~"microstack_.+"})'
        if not wait_until(lambda: bool(self.stack.prometheus_query(series)), timeout=30, interval=1):
            raise ToolError("Prometheus scraped nothing within 30 s")
        without = self.idle_percent[""][f"{STATUS}-1"]
        time.sleep(10)  # the first scrapes' work (a new collector) is not the steady cost
        before = self.container_cpu_seconds()
        started = time.monotonic()
        time.sleep(self.idle_seconds)
        after = self.container_cpu_seconds()
        elapsed = time.monotonic() - started

        def percent(service: str) -> float:
            name = f"{self.stack.project}-{service}-1"
            return 100 * (after[name] - before[name]) / elapsed

        (count,) = self.stack.prometheus_query(series)
        self.say("**With Prometheus** (`make up METRICS=1`, scraping every 5 s):")
        self.say()
        self.say(f"`docker compose --profile {METRICS_PROFILE} up --wait`, built images, fresh volumes: {took:.1f} s")
        self.say()
        self.say(f"Series in one scrape of the status page's /metrics: {float(count['value'][1]):.0f}")
        self.say()
        self.say(f"CPU over {elapsed:.0f} s, % of one core:")
        self.say()
        self.say("| container | % |")
        self.say("| --- | ---: |")
        self.say(f"| {STATUS}-1, scraped every 5 s | {percent(STATUS):.2f} |")
        self.say(f"| {STATUS}-1, not scraped (above) | {without:.2f} |")
        self.say(f"| {PROMETHEUS}-1 | {percent(PROMETHEUS):.2f} |")
        self.say()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=int, default=30, help="how long the idle CPU is measured")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where sizes.md goes")
    arguments = parser.parse_args()

    def work() -> None:
        with tempfile.TemporaryDirectory() as directory:
            sizes = Sizes(arguments.idle_seconds, Path(directory))
            sizes.run()
        arguments.out.mkdir(parents=True, exist_ok=True)
        preamble = report_preamble(
            "Image sizes, start time, idle CPU, a one-service rebuild and what Prometheus costs", "make sizes"
        )
        (arguments.out / "sizes.md").write_text("\n".join([*preamble, *sizes.lines]) + "\n")
        print(f"wrote {arguments.out / 'sizes.md'}")

    return tool_main("sizes", work)


if __name__ == "__main__":
    sys.exit(main())
