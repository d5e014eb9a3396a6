"""Where the status page's figures come from, none of them a second copy of the request path:

- the replicas: the upstreams the gateway routes to (its internal listener serves the file it loaded);
- each replica's workers, busy or idle: the replica's uWSGI stats server, read through the gateway's status
  plane (stats-http on a unix socket beside the replica's own), a listener no service can reach;
- requests per second, p50 and p99 latency and errors, per replica and in all: the gateway's access log, which
  nginx also sends here line by line as syslog datagrams (one unix socket in the status volume);
- the gateway's connections and its request count: nginx's stub_status.

A replica is shown while its stats server answers: one that stops or dies is gone at the next poll. Polling
runs only while someone watches (the page or its JSON was read in the last WATCHED_SECONDS): an idle stack pays
for none of it, and the first look polls at once.
"""

import json
import logging
import os
import socket
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests
from requests_unixsocket import UnixAdapter

log = logging.getLogger(__name__)

WINDOW_SECONDS = 10
POLL_SECONDS = float(os.environ.get("STATUS_POLL_SECONDS", "1"))
WATCHED_SECONDS = 60
LOG_SOCKET = Path(os.environ.get("STATUS_LOG_SOCKET", "/run/uwsgi/log.sock"))
GATEWAY_SOCKET = os.environ.get("GATEWAY_STATUS_SOCKET", "/run/gateway-status/status.sock")


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


def figures(served: list[Served], seconds: float) -> dict:
    """Rate, latency quantiles and server errors of some requests over a window of this many seconds."""
    latencies = sorted(request.seconds * 1000 for request in served)
    p50: float | None
    p99: float | None
    if len(latencies) >= 2:
        percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
        p50, p99 = percentiles[49], percentiles[98]
    else:
        p50 = p99 = latencies[0] if latencies else None
    return {
        "requests_per_second": round(len(served) / seconds, 1),
        "p50_ms": None if p50 is None else round(p50, 1),
        "p99_ms": None if p99 is None else round(p99, 1),
        "errors": sum(1 for request in served if request.status >= 500),
    }


def parse_upstreams(text: str) -> dict[str, list[str]]:
    """The services and their replicas' instance names, from the upstreams the gateway loaded."""
    services: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["upstream"] and len(words) >= 2:
            current = services.setdefault(words[1], [])
        elif words[:1] == ["server"] and current is not None and "down;" not in words:
            address = words[1]
            current.append(Path(address).stem if address.startswith("unix:") else address)
        elif words[:1] == ["}"]:
            current = None
    return services


def parse_stub_status(text: str) -> dict:
    """nginx's stub_status: `Active connections: N`, then accepts, handled and requests, then reading/writing."""
    lines = text.splitlines()
    accepted, handled, requests_total = (int(number) for number in lines[2].split())
    return {"active_connections": int(lines[0].split(":")[1]), "requests_total": requests_total}


def workers_of(stats: dict) -> list[dict]:
    return [
        {"id": worker["id"], "status": worker["status"], "requests": worker["requests"]}
        for worker in stats.get("workers", [])
    ]


@dataclass
class Collector:
    """Keeps the last WINDOW_SECONDS of the gateway's log and the last poll of every replica's workers."""

    window: deque = field(default_factory=deque)
    replicas: dict = field(default_factory=dict)  # service -> {instance: [workers]}
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
        LOG_SOCKET.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(str(LOG_SOCKET))
            LOG_SOCKET.chmod(0o660)  # the gateway's user is in this container's group, not its owner
            while True:
                served = parse_log_line(receiver.recv(4096))
                if served is not None:
                    self.add(served)

    def add(self, served: Served) -> None:
        with self.lock:
            self.window.append(served)

    def recent(self, now: float) -> list[Served]:
        with self.lock:
            while self.window and self.window[0].at < now - WINDOW_SECONDS:
                self.window.popleft()
            return list(self.window)

    # --- the replicas and the gateway's counters --------------------------------------------------------------

    def get(self, path: str) -> requests.Response:
        response = self.session.get(self.base + path, timeout=1, headers={"Host": "localhost"})
        response.raise_for_status()
        return response

    def poll(self) -> None:
        services = parse_upstreams(self.get("/_gateway/upstreams").text)
        replicas: dict[str, dict[str, list[dict]]] = {}
        for service, instances in services.items():
            replicas[service] = {}
            for instance in instances:
                try:
                    stats = json.loads(self.get(f"/_gateway/stats/{service}/{instance}").content)
                except (requests.RequestException, ValueError):
                    continue  # stopping, or killed: not a replica any more
                replicas[service][instance] = workers_of(stats)
        gateway = parse_stub_status(self.get("/_gateway/stub_status").text)
        with self.lock:
            self.replicas, self.gateway, self.polled_at = replicas, gateway, time.time()

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

    def watch(self) -> None:
        """Someone reads the page: keep polling, and poll now if the last figures are stale (a first look)."""
        self.watched_at = time.monotonic()
        self.watched.set()
        if time.time() - self.polled_at > 2 * POLL_SECONDS:
            self.poll_logging_failure()

    # --- what the page shows ----------------------------------------------------------------------------------

    def snapshot(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        served = self.recent(now)
        with self.lock:
            replicas, gateway, polled_at = dict(self.replicas), dict(self.gateway), self.polled_at
        services = []
        for service, instances in sorted(replicas.items()):
            rows = []
            for instance, workers in sorted(instances.items()):
                own = [request for request in served if request.service == service and request.instance == instance]
                busy = sum(1 for worker in workers if worker["status"] == "busy")
                rows.append(
                    {
                        "instance": instance,
                        "workers": workers,
                        "busy": busy,
                        "idle": len(workers) - busy,
                        **figures(own, WINDOW_SECONDS),
                    }
                )
            in_service = [request for request in served if request.service == service]
            services.append({"name": service, "replicas": rows, **figures(in_service, WINDOW_SECONDS)})
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "window_seconds": WINDOW_SECONDS,
            "polled_seconds_ago": round(now - polled_at, 1) if polled_at else None,
            "gateway": {**gateway, **figures(served, WINDOW_SECONDS)},
            "services": services,
        }
