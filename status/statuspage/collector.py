"""Where the status page's figures come from, none of them a second copy of the request path:

- the replicas: the upstreams the gateway routes to (its status plane serves the file it loaded), each with the
  name `docker compose ps` shows, which the replica wrote beside its socket (servicekit.sockets); over TCP
  (Swarm), where a replica is an address, its hostname, task name and node, from its health;
- each replica's workers, busy or idle, and requests per second: the replica's uWSGI stats server, read through
  the gateway's status plane (stats-http on a unix socket beside the replica's own; over TCP, a port on the
  service's own network, which only its replicas and the gateway join), a listener no other service can reach.
  The rate is the growth of the workers' request counters, less the healthchecks among them (a uWSGI metric):
  counters lose nothing, whatever the load;
- p50 and p99 latency and errors, per replica and in all: the gateway's access log, which nginx also sends here
  line by line as syslog datagrams (one unix socket in the status volume). A datagram the socket cannot take is
  dropped: the page says how many requests the counters saw that no log line sampled;
- the gateway's connections and its request count: nginx's stub_status.

What a service's volume holds is written by that service: the gateway routes only to what passes its filter and
lists what it refused (nginx/entrypoint.sh), which the page shows; a replica's name and stats are read here with a
bound on their size, and a name is shown only if it is one a replica can have.

A replica is shown while its stats server answers: one that stops or dies is gone at the next poll. Polling
runs only while someone watches (the page, its JSON or /metrics was read in the last WATCHED_SECONDS): an idle
stack pays for none of it, and the first look polls at once.
"""

import bisect
import contextlib
import copy
import json
import logging
import os
import re
import socket
import statistics
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests
from requests_unixsocket import UnixAdapter

from servicekit.healthcheck import HEALTHCHECKS_METRIC
from servicekit.server import THREADS_METRIC

log = logging.getLogger(__name__)

WINDOW_SECONDS = 10
POLL_SECONDS = float(os.environ.get("STATUS_POLL_SECONDS", "1"))
WATCHED_SECONDS = 60
# How old the last poll may be for a scrape of /metrics to use it (poll_now).
FRESH_SECONDS = 0.1
LOG_SOCKET = Path(os.environ.get("STATUS_LOG_SOCKET", "/run/uwsgi/log.sock"))
HEARTBEAT = LOG_SOCKET.parent / "heartbeat"
HEARTBEAT_SECONDS = 1.0
# Room for a burst of log lines while the collector's thread waits for the GIL (docker-compose.yml also raises
# the queue of datagrams a unix socket holds, net.unix.max_dgram_qlen).
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
GATEWAY_SOCKET = os.environ.get("GATEWAY_STATUS_SOCKET", "/run/gateway-status/status.sock")
# What a replica writes is read up to these sizes: its name (a hostname's label), its uWSGI stats (about 1 KiB a
# worker). A name is shown only if it is a DNS label, the name Docker gives a container.
NAME_BYTES = 64
STATS_BYTES = 1024 * 1024
REPLICA_NAME = re.compile(r"[0-9A-Za-z](?:[0-9A-Za-z-]{0,61}[0-9A-Za-z])?")
# What `make autoscale` last decided (scripts/autoscale.py writes it into this container's own volume), read with
# a bound on its size: at most AUTOSCALE_DECISIONS lines of it are shown.
AUTOSCALE_FILE = Path(os.environ.get("STATUS_AUTOSCALE_FILE", "/run/uwsgi/autoscale.json"))
AUTOSCALE_BYTES = 64 * 1024
AUTOSCALE_DECISIONS = 10
SERVICE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
# The upper bounds (seconds) of the histogram of the gateway's response times that /metrics exposes (metrics.py):
# a health check's millisecond to the request deadline's tens of seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Served:
    """One request the gateway answered, from its access log."""

    at: float
    service: str
    instance: str
    status: int
    seconds: float


def parse_log_line(datagram: bytes) -> Served | None:
    """A syslog datagram of nginx's status log format (nginx/snippets/status.inc):
    `<190>Nov 28 21:00:00 gateway: <msec>|<service>|<upstream addresses>|<status>|<request time>`."""
    _, separator, line = datagram.decode("utf-8", errors="replace").partition(": ")
    fields = line.strip().split("|")
    if not separator or len(fields) != 5:
        return None
    at, service, upstreams, status, seconds = fields
    try:
        return Served(float(at), service, instance_of(upstreams), int(status), float(seconds))
    except ValueError:
        return None


def instance_of(upstreams: str) -> str:
    """The replica that answered: the last address nginx tried ("unix:/run/uwsgi/service1/<instance>.sock, …")."""
    last = upstreams.split(",")[-1].strip()
    if last.startswith("unix:"):
        return Path(last).stem
    return "" if last == "-" else last


@dataclass
class Requests:
    """Requests the gateway logged, compact: when each ended, its status and how long it took, in typed arrays
    (18 bytes a request) rather than an object each (140 bytes and more): a flood of 40,000 requests a second,
    kept over the window, is 7 MB, where objects came near the page's memory limit (128 MB) on their own."""

    at: array = field(default_factory=lambda: array("d"))
    status: array = field(default_factory=lambda: array("H"))
    seconds: array = field(default_factory=lambda: array("d"))

    @classmethod
    def of(cls, served: Iterable[Served]) -> "Requests":
        requests = cls()
        for request in served:
            requests.add(request)
        return requests

    def add(self, served: Served) -> None:
        self.at.append(served.at)
        self.status.append(served.status)
        self.seconds.append(served.seconds)

    def extend(self, other: "Requests", since: float = float("-inf")) -> None:
        """Adds other's requests that ended at or after since."""
        if not other.at or min(other.at) >= since:
            self.at.extend(other.at)
            self.status.extend(other.status)
            self.seconds.extend(other.seconds)
            return
        for index, at in enumerate(other.at):
            if at >= since:
                self.at.append(at)
                self.status.append(other.status[index])
                self.seconds.append(other.seconds[index])

    def __len__(self) -> int:
        return len(self.at)


@dataclass
class Logged:
    """Everything the gateway logged for one replica since the status page started: responses by status class
    and their durations as a histogram (DURATION_BUCKETS, then +Inf), for /metrics."""

    by_class: list = field(default_factory=lambda: [0] * 6)  # by status // 100: 1xx to 5xx (index 0 unused)
    buckets: list = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    seconds_sum: float = 0.0

    def add(self, served: Served) -> None:
        # Cheap: the collector's one thread adds every line the gateway logs.
        self.by_class[min(served.status // 100, 5)] += 1
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, served.seconds)] += 1
        self.seconds_sum += served.seconds

    def classes(self) -> dict[str, int]:
        """Responses by status class, as "2xx": count, for the classes seen."""
        return {f"{index}xx": count for index, count in enumerate(self.by_class) if index and count}


@dataclass(frozen=True)
class ReplicaTotals:
    """A replica's uWSGI counters at the last poll, for /metrics."""

    requests: int
    busy_seconds: float
    busy: int
    idle: int
    threads: int
    listen_queue: int
    listen_queue_errors: int


def totals_of(stats: dict) -> ReplicaTotals:
    workers = stats.get("workers", [])
    counted = counted_of(stats, 0.0, 0)
    busy = sum(1 for worker in workers if worker.get("status") == "busy")
    return ReplicaTotals(
        requests=max(0, counted.requests - counted.healthchecks),
        busy_seconds=sum(worker.get("running_time", 0) for worker in workers) / 1e6,  # µs in uWSGI's stats
        busy=busy,
        idle=len(workers) - busy,
        threads=int((stats.get("metrics") or {}).get(THREADS_METRIC, {}).get("value") or 1),
        listen_queue=int(stats.get("listen_queue", 0)),
        listen_queue_errors=int(stats.get("listen_queue_errors", 0)),
    )


@dataclass(frozen=True)
class MetricsReplica:
    service: str
    replica: str
    node: str
    totals: ReplicaTotals


@dataclass(frozen=True)
class MetricsLogged:
    service: str
    replica: str
    node: str
    logged: Logged


@dataclass(frozen=True)
class MetricsState:
    """What one scrape of /metrics shows: a copy, taken under the collector's lock."""

    replicas: list[MetricsReplica]
    routed: dict[str, int]
    draining: dict[str, int]
    logged: list[MetricsLogged]
    gateway: dict


@dataclass
class Second:
    """The requests the gateway logged in one second of the window, per replica: the window drops them whole."""

    start: int
    replicas: dict = field(default_factory=dict)  # (service, instance) -> Requests


def figures(served: Requests, seconds: float) -> dict:
    """Rate, latency quantiles and server errors of some requests over a window of this many seconds."""
    return {"requests_per_second": round(len(served) / seconds, 1), **latency_figures(served)}


def latency_figures(served: Requests) -> dict:
    """Latency quantiles and server errors of some requests."""
    latencies = sorted(seconds * 1000 for seconds in served.seconds)
    p50: float | None
    p99: float | None
    if len(latencies) >= 2:
        percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
        p50, p99 = percentiles[49], percentiles[98]
    else:
        p50 = p99 = latencies[0] if latencies else None
    return {
        "p50_ms": None if p50 is None else round(p50, 1),
        "p99_ms": None if p99 is None else round(p99, 1),
        "errors": sum(1 for status in served.status if status >= 500),
    }


@dataclass(frozen=True)
class Counted:
    """A replica's counters at one poll: requests its workers served, the healthchecks among them, and the log
    lines received for it so far."""

    at: float
    requests: int
    healthchecks: int
    sampled: int


def counted_of(stats: dict, at: float, sampled: int) -> Counted:
    requests = sum(worker.get("requests", 0) for worker in stats.get("workers", []))
    healthchecks = (stats.get("metrics") or {}).get(HEALTHCHECKS_METRIC, {}).get("value", 0)
    return Counted(at, requests, healthchecks, sampled)


def counter_figures(history: list[Counted], span: float) -> dict:
    """Requests per second the gateway sent a replica over the window's span of polls, from its counters, and how
    many of those no log line sampled (dropped datagrams); None for both before two polls. The span is the same
    for every replica (polled_span): a replica that started within it has its requests spread over all of it,
    so the replicas' rates add up to the service's."""
    if len(history) < 2 or span <= 0:
        return {"requests_per_second": None, "unsampled": None}
    first, last = history[0], history[-1]
    # A worker that restarts starts its count again: a drop of the sum is not negative traffic.
    served = max(0, (last.requests - first.requests) - (last.healthchecks - first.healthchecks))
    return {
        "requests_per_second": round(served / span, 1),
        "unsampled": max(0, served - (last.sampled - first.sampled)),
    }


def polled_span(histories: list[list[Counted]]) -> float:
    """The seconds between the first and the last poll in the window, over every replica."""
    times = [counted.at for history in histories for counted in history]
    return max(times) - min(times) if times else 0.0


def parse_upstreams(text: str) -> dict[str, list[str]]:
    """The services and their replicas' instance names, from the upstreams the gateway loaded (every value
    quoted)."""
    services: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        words = [word.strip('"') for word in line.split()]
        if words[:1] == ["upstream"] and len(words) >= 2:
            current = services.setdefault(words[1], [])
        elif words[:1] == ["server"] and current is not None and "down;" not in words:
            address = words[1]
            current.append(Path(address).stem if address.startswith("unix:") else address)
        elif words[:1] == ["}"]:
            current = None
    return services


def parse_refused(text: str) -> dict[str, list[dict]]:
    """By service, what the gateway refused in its volume: `service<TAB>name<TAB>why` lines."""
    refused: dict[str, list[dict]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            service, name, why = parts
            refused.setdefault(service, []).append({"name": name, "why": why})
    return refused


def parse_draining(text: str) -> dict[str, list[str]]:
    """By service, the replicas the gateway left out while they drain: `service<TAB>name` lines. Their names are
    a service's to write: only a container's possible names are kept."""
    draining: dict[str, list[str]] = {}
    for line in text.splitlines():
        service, _, name = line.partition("\t")
        if REPLICA_NAME.fullmatch(service) and REPLICA_NAME.fullmatch(name):
            draining.setdefault(service, []).append(name)
    return draining


def replica_name(text: str) -> str | None:
    """The name a replica wrote beside its socket, if it is one a container can have."""
    name = text.strip()
    return name if REPLICA_NAME.fullmatch(name) else None


def parse_stub_status(text: str) -> dict:
    """nginx's stub_status: `Active connections: N`, then accepts, handled and requests, then reading/writing."""
    lines = text.splitlines()
    accepted, handled, requests_total = (int(number) for number in lines[2].split())
    states = lines[3].split()  # Reading: N Writing: N Waiting: N
    return {
        "active_connections": int(lines[0].split(":")[1]),
        "requests_total": requests_total,
        "reading": int(states[1]),
        "writing": int(states[3]),
        "waiting": int(states[5]),
    }


def autoscale_decisions(path: Path = AUTOSCALE_FILE) -> list[dict]:
    """The autoscaler's last decisions, oldest first, each {"at", "service", "replicas", "why"}; none where the file
    is missing, too large or not as the autoscaler writes it (what is not is left out)."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as file:  # the file itself, never a link
            text = file.read(AUTOSCALE_BYTES + 1)
        decisions = json.loads(text) if len(text) <= AUTOSCALE_BYTES else []
    except (OSError, ValueError):
        return []
    if not isinstance(decisions, list):
        return []
    shown = []
    for decision in decisions[-AUTOSCALE_DECISIONS:]:
        if (
            isinstance(decision, dict)
            and isinstance(decision.get("at"), int | float)
            and 0 <= decision["at"] < 2**33  # a time gmtime takes (not NaN, not the year 3000)
            and isinstance(decision.get("service"), str)
            and SERVICE_NAME.fullmatch(decision["service"])
            and isinstance(decision.get("replicas"), int)
            and isinstance(decision.get("why"), str)
        ):
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(decision["at"]))
            shown.append({"at": at, "service": decision["service"], "replicas": decision["replicas"],
                          "why": decision["why"][:300]})  # fmt: skip
    return shown


def workers_of(stats: dict) -> list[dict]:
    return [
        {"id": worker["id"], "status": worker["status"], "requests": worker["requests"]}
        for worker in stats.get("workers", [])
    ]


def sums_of(rows: list[dict]) -> dict:
    """A service's rate and unsampled requests: its replicas' added up (None where no replica has one yet)."""
    sums = {}
    for key in ("requests_per_second", "unsampled"):
        known = [row[key] for row in rows if row[key] is not None]
        sums[key] = round(sum(known), 1) if known else None
    return sums


@dataclass
class Collector:
    """Keeps the last WINDOW_SECONDS of the gateway's log and the last poll of every replica's workers."""

    window: deque = field(default_factory=deque)  # of Second, the oldest first
    replicas: dict = field(default_factory=dict)  # service -> {instance: [workers]}
    counted: dict = field(default_factory=dict)  # (service, instance) -> deque of Counted, over the window
    received: Counter = field(default_factory=Counter)  # (service, instance) -> log lines received
    identities: dict = field(default_factory=dict)  # instance -> its hostname, name and node
    logged: dict = field(default_factory=dict)  # (service, instance) -> Logged, since the page started
    totals: dict = field(default_factory=dict)  # (service, instance) -> ReplicaTotals at the last poll
    refused: dict = field(default_factory=dict)  # service -> what the gateway refused in its volume
    draining: dict = field(default_factory=dict)  # service -> the replicas left out while they drain
    counted_since: float | None = None  # when polling last started: a replica first seen later is a new one
    gateway: dict = field(default_factory=dict)
    polled_at: float = 0.0
    watched_at: float = float("-inf")
    lock: threading.Lock = field(default_factory=threading.Lock)
    watched: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.session.mount("http+unix://", UnixAdapter())
        self.base = f"http+unix://{quote(GATEWAY_SOCKET, safe='')}"

    def start(self) -> None:
        threading.Thread(target=self.receive_log, name="status-log", daemon=True).start()
        threading.Thread(target=self.poll_forever, name="status-poll", daemon=True).start()

    # --- the gateway's access log -----------------------------------------------------------------------------

    def receive_log(self) -> None:
        """Receives the gateway's log lines; beats the heartbeat the gateway checks at least every second, so it
        sends no line to a status container that is gone (nginx/entrypoint.sh, watch_status)."""
        LOG_SOCKET.unlink(missing_ok=True)
        beaten_at = 0.0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            receiver.bind(str(LOG_SOCKET))
            LOG_SOCKET.chmod(0o660)  # the gateway's user is in this container's group, not its owner
            receiver.settimeout(HEARTBEAT_SECONDS)
            while True:
                try:
                    served = parse_log_line(receiver.recv(4096))
                except TimeoutError:
                    served = None
                if served is not None:
                    self.add(served)
                if time.monotonic() - beaten_at >= HEARTBEAT_SECONDS:
                    HEARTBEAT.write_text(f"{time.time():.0f}\n")
                    beaten_at = time.monotonic()

    def add(self, served: Served) -> None:
        """A request the gateway logged. Each new second drops those past the window, whether or not the page is
        read: kept until the next read, an unwatched page's log grew by every request until the kernel killed its
        process for memory (under make bench's load, about once a minute)."""
        replica = (served.service, served.instance)
        with self.lock:
            if not self.window or int(served.at) > self.window[-1].start:
                self.window.append(Second(int(served.at)))
                self.expire(served.at)
            # A line a little late (two nginx workers write them) joins the newest second: what counts is its time.
            self.window[-1].replicas.setdefault(replica, Requests()).add(served)
            self.received[replica] += 1
            if served.instance:
                self.logged.setdefault(replica, Logged()).add(served)

    def expire(self, now: float) -> None:
        """Drops the seconds wholly past the window (the lock held)."""
        while self.window and self.window[0].start + 1 <= now - WINDOW_SECONDS:
            self.window.popleft()

    def recent(self, now: float) -> dict[tuple[str, str], Requests]:
        """The window's requests, by replica (service, instance)."""
        since = now - WINDOW_SECONDS
        by_replica: dict[tuple[str, str], Requests] = {}
        with self.lock:
            self.expire(now)
            for second in self.window:
                for replica, logged in second.replicas.items():
                    by_replica.setdefault(replica, Requests()).extend(logged, since)
        return by_replica

    # --- the replicas and the gateway's counters --------------------------------------------------------------

    def get(self, path: str) -> requests.Response:
        response = self.session.get(self.base + path, timeout=1, headers={"Host": "localhost"})
        response.raise_for_status()
        return response

    def read(self, path: str, limit: int) -> bytes:
        """At most limit bytes of what the status plane answers at path: a replica's own files and stats are
        whatever its service wrote. More is a ValueError."""
        with self.session.get(self.base + path, timeout=1, headers={"Host": "localhost"}, stream=True) as response:
            response.raise_for_status()
            body = response.raw.read(limit + 1, decode_content=True)
        if len(body) > limit:
            raise ValueError(f"{path}: over {limit} bytes")
        return body

    def poll(self) -> None:
        if self.counted_since is None or time.time() - self.polled_at > 2 * POLL_SECONDS:
            self.counted_since = time.time()  # polling starts (again): what each replica served before is unknown
            with self.lock:
                self.counted.clear()
        services = parse_upstreams(self.get("/_gateway/upstreams").text)
        replicas: dict[str, dict[str, list[dict]]] = {}
        for service, instances in services.items():
            replicas[service] = {}
            for instance in instances:
                try:
                    stats = json.loads(self.read(f"/_gateway/stats/{service}/{instance}", STATS_BYTES))
                except (requests.RequestException, ValueError):
                    continue  # stopping, or killed: not a replica any more (or not one: too much)
                replicas[service][instance] = workers_of(stats)
                self.count(service, instance, stats)
                self.learn_identity(service, instance)
        gateway = parse_stub_status(self.get("/_gateway/stub_status").text)
        refused = parse_refused(self.get("/_gateway/refused").text)
        draining = parse_draining(self.get("/_gateway/draining").text)
        with self.lock:
            self.replicas, self.gateway, self.polled_at = replicas, gateway, time.time()
            self.refused, self.draining = refused, draining
            # A replica gone is forgotten: its counters would stretch the window's span.
            live = {(service, instance) for service, instances in replicas.items() for instance in instances}
            self.counted = {replica: history for replica, history in self.counted.items() if replica in live}
            addresses = {instance for _, instance in live}
            self.identities = {key: value for key, value in self.identities.items() if key in addresses}
            self.totals = {replica: totals for replica, totals in self.totals.items() if replica in live}
            self.logged = {replica: logged for replica, logged in self.logged.items() if replica in live}

    def count(self, service: str, instance: str, stats: dict) -> None:
        now = time.time()
        with self.lock:
            history = self.counted.get((service, instance))
            if history is None:
                history = self.counted[(service, instance)] = deque()
                if self.counted_since is not None and now - self.counted_since > 1.5 * POLL_SECONDS:
                    # Started while the page was polling: its counters started at zero, just before this poll.
                    history.append(Counted(now - POLL_SECONDS, 0, 0, 0))
            history.append(counted_of(stats, now, self.received[(service, instance)]))
            self.totals[(service, instance)] = totals_of(stats)
            while history and history[0].at < now - WINDOW_SECONDS:
                history.popleft()

    def learn_identity(self, service: str, instance: str) -> None:
        """Once per replica: over unix sockets the instance is the hostname and the name is written beside the
        socket; over TCP the instance is an address, and the replica's health says who it is and where."""
        if instance in self.identities:
            return
        # Not known (yet): the instance alone until it is, asked again at the next poll.
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            if ":" in instance:
                health = json.loads(self.get(f"/_gateway/replica/{service}/{instance}").content)
                identity = {"instance": health["instance"], "name": health["name"], "node": health["node"]}
            else:
                name = replica_name(self.read(f"/_gateway/names/{service}/{instance}", NAME_BYTES).decode())
                identity = {"instance": instance, "name": name, "node": None}
            with self.lock:
                self.identities[instance] = identity

    def poll_forever(self) -> None:
        while True:
            if time.monotonic() - self.watched_at > WATCHED_SECONDS:
                self.watched.clear()
                self.watched.wait()  # until the page is read again (watch)
            self.poll_logging_failure()
            time.sleep(POLL_SECONDS)

    def poll_logging_failure(self) -> None:
        try:
            self.poll()
        except (requests.RequestException, ValueError, IndexError) as error:
            log.warning("status: could not poll the gateway: %s", error)

    def poll_now(self) -> None:
        """A poll now, unless one just ended: a scrape's counters are those of its own moment, not up to a poll
        interval old (Prometheus stamps them with the scrape's time: an old value would skew its rates)."""
        if time.time() - self.polled_at > FRESH_SECONDS:
            self.poll_logging_failure()

    def watch(self) -> None:
        """Someone reads the page: keep polling, and poll now if the last figures are stale (a first look)."""
        self.watched_at = time.monotonic()
        self.watched.set()
        if time.time() - self.polled_at > 2 * POLL_SECONDS:
            self.poll_logging_failure()

    # --- what the page shows ----------------------------------------------------------------------------------

    def metrics_state(self) -> MetricsState:
        """The cumulative figures /metrics shows (metrics.py), labelled by service, replica and node."""
        with self.lock:

            def node(instance: str) -> str:
                return self.identities.get(instance, {}).get("node") or ""

            return MetricsState(
                replicas=[
                    MetricsReplica(service, instance, node(instance), totals)
                    for (service, instance), totals in sorted(self.totals.items())
                ],
                routed={service: len(instances) for service, instances in self.replicas.items()},
                draining={service: len(self.draining.get(service, [])) for service in self.replicas},
                logged=[
                    MetricsLogged(service, instance, node(instance), copy.deepcopy(logged))
                    for (service, instance), logged in sorted(self.logged.items())
                ],
                gateway=dict(self.gateway),
            )

    def snapshot(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        served = self.recent(now)
        everything = Requests()
        for logged in served.values():
            everything.extend(logged)
        with self.lock:
            replicas, gateway, polled_at = dict(self.replicas), dict(self.gateway), self.polled_at
            counted = {replica: list(history) for replica, history in self.counted.items()}
            identities = dict(self.identities)
            refused, draining = dict(self.refused), dict(self.draining)
        span = polled_span(list(counted.values()))
        services = []
        for service, instances in sorted(replicas.items()):
            rows = []
            for instance, workers in sorted(instances.items()):
                own = served.get((service, instance), Requests())
                busy = sum(1 for worker in workers if worker["status"] == "busy")
                identity = identities.get(instance, {})
                rows.append(
                    {
                        "instance": identity.get("instance", instance),
                        "address": instance if ":" in instance else None,
                        "name": identity.get("name"),
                        "node": identity.get("node"),
                        "workers": workers,
                        "busy": busy,
                        "idle": len(workers) - busy,
                        **counter_figures(counted.get((service, instance), []), span),
                        **latency_figures(own),
                    }
                )
            in_service = Requests()
            for (served_service, _), logged in served.items():
                if served_service == service:
                    in_service.extend(logged)
            services.append(
                {
                    "name": service,
                    "replicas": rows,
                    "refused": refused.get(service, []),
                    "draining": draining.get(service, []),
                    **sums_of(rows),
                    **latency_figures(in_service),
                }
            )
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "window_seconds": WINDOW_SECONDS,
            "polled_seconds_ago": round(now - polled_at, 1) if polled_at else None,
            "gateway": {**gateway, **figures(everything, WINDOW_SECONDS)},
            "services": services,
            "autoscale": autoscale_decisions(),
        }
