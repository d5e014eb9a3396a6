"""Sends steady, bounded load to one service through the gateway, to watch on the status page while scaling
(`make load SERVICE=service1 RATE=50 SECONDS=60`).

GETs of the service's health (every service has it, no account needed) at RATE requests per second for SECONDS,
from a few threads; only to the gateway's published address on this host. At most RATE x SECONDS requests.

Each thread keeps its connection alive and, as browsers and urllib3's retries do, sends a GET again once when the
connection was closed as the request went out (nginx closes idle keep-alive connections on every reload, so on
every scale and deploy). --no-retry counts those as failures instead: what a client that never retries sees.
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from collections import Counter

import requests

from project import SERVICES, ToolError, retrying_session, tool_main

MAX_RATE = 2000
MAX_SECONDS = 3600


def gateway_address() -> str:
    """The gateway's published address as Compose resolves it (GATEWAY_BIND, GATEWAY_PORT, .env)."""
    config = json.loads(
        subprocess.run(
            ["docker", "compose", "config", "--format", "json"], capture_output=True, text=True, check=True
        ).stdout
    )
    (port,) = config["services"]["nginx"]["ports"][:1]
    host = port.get("host_ip") or "127.0.0.1"
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port['published']}"  # noqa: S104


def send(
    url: str, rate: float, seconds: float, threads: int, stop: threading.Event | None = None, retry: bool = True
) -> Counter:
    """Sends GETs of url at rate for seconds (or until stop is set); the count of each outcome."""
    stop = stop or threading.Event()
    outcomes: Counter = Counter()
    lock = threading.Lock()
    started = time.monotonic()
    total = int(rate * seconds)
    next_index = iter(range(total))

    def worker() -> None:
        session = retrying_session() if retry else requests.Session()
        for index in next_index:  # shared: each request is sent by one thread, on its slot in the schedule
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if stop.is_set() or time.monotonic() - started > seconds + 5:
                return
            try:
                outcome = str(session.get(url, timeout=5).status_code)
            except requests.RequestException as error:
                outcome = type(error).__name__
            with lock:
                outcomes[outcome] += 1

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help=f"one of {', '.join(SERVICES)}")
    parser.add_argument("--rate", type=float, default=50, help=f"requests per second (at most {MAX_RATE})")
    parser.add_argument("--seconds", type=float, default=60, help=f"how long (at most {MAX_SECONDS})")
    parser.add_argument("--no-retry", action="store_true", help="never send a request again (see above)")
    parser.add_argument("--base-url", help="the gateway (default: this project's published port on this host)")
    arguments = parser.parse_args()

    def load() -> None:
        if arguments.service not in SERVICES:
            raise ToolError(f"unknown service {arguments.service!r}: choose one of {', '.join(SERVICES)}")
        if not (0 < arguments.rate <= MAX_RATE and 0 < arguments.seconds <= MAX_SECONDS):
            raise ToolError(f"RATE must be in (0, {MAX_RATE}] and SECONDS in (0, {MAX_SECONDS}]")
        url = f"{arguments.base_url or gateway_address()}/api/{arguments.service}/health"
        threads = max(2, min(32, int(arguments.rate // 20) + 2))
        retry = "never retried" if arguments.no_retry else "a request on a closed connection retried once"
        print(f"load: {arguments.rate:g} requests/s to {url} for {arguments.seconds:g} s ({retry})", flush=True)
        outcomes = send(url, arguments.rate, arguments.seconds, threads, retry=not arguments.no_retry)
        print(f"load: sent {sum(outcomes.values())}: {dict(outcomes)}")

    return tool_main("load", load)


if __name__ == "__main__":
    sys.exit(main())
