"""Calls to other services fail fast: within the request's budget, no retry of a read that timed out, and a breaker
that answers at once, with Retry-After, once a dependency keeps failing (servicekit.http)."""

import socket
import threading
import time
from urllib.parse import quote

import pytest

from servicekit import http
from servicekit.context import deadline_var
from servicekit.exceptions import DependencyUnavailable
from servicekit.http import client_for

PREFIX = "/api/service3"


class StuckGateway:
    """A gateway on a unix socket that takes every connection and its request, then answers nothing (a paused
    dependency behind it), or answers `status` at once when one is given."""

    def __init__(self, path: str, status: int | None = None):
        self.connections = 0
        self.requests: list[str] = []  # the request lines of the answered ones
        self.status = status
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.held: list[socket.socket] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(connection)
            if self.status is not None:
                self.requests.append(connection.recv(65536).split(b"\r\n", 1)[0].decode())
                body = b'{"error": {"code": "service_unavailable"}}'
                head = f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                connection.sendall(head.encode() + body)
                connection.close()

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def gateway(tmp_path, settings):
    def start(status: int | None = None) -> StuckGateway:
        path = str(tmp_path / "internal.sock")
        settings.GATEWAY_INTERNAL_URL = f"http+unix://{quote(path, safe='')}"
        settings.HTTP_READ_TIMEOUT = 0.3
        started = StuckGateway(path, status)
        stubs.append(started)
        return started

    stubs: list[StuckGateway] = []
    yield start
    for stub in stubs:
        stub.close()


def test_a_read_that_timed_out_is_not_tried_again(gateway):
    stuck = gateway()
    with pytest.raises(DependencyUnavailable):
        client_for("service2").request("GET", "/products")
    assert stuck.connections == 1


def test_a_call_waits_no_longer_than_what_is_left_of_the_request_budget(gateway, settings):
    stuck = gateway()
    settings.HTTP_READ_TIMEOUT = 5
    deadline = deadline_var.set(time.monotonic() + 1.0)
    started = time.monotonic()
    try:
        with pytest.raises(DependencyUnavailable):
            client_for("service2").request("GET", "/products")
    finally:
        deadline_var.reset(deadline)
    assert time.monotonic() - started < 1.0  # the budget, not HTTP_READ_TIMEOUT's 5 s
    assert stuck.connections == 1


def test_with_no_time_left_no_call_is_made(gateway):
    stuck = gateway()
    deadline = deadline_var.set(time.monotonic() + 0.1)
    try:
        with pytest.raises(DependencyUnavailable) as refused:
            client_for("service2").request("GET", "/products")
    finally:
        deadline_var.reset(deadline)
    assert "no time left" in refused.value.details["reason"]
    assert stuck.connections == 0


def test_a_dependency_answering_503_is_not_asked_again_by_the_same_call(gateway):
    down = gateway(status=503)
    with pytest.raises(DependencyUnavailable):
        client_for("service2").request("GET", "/products")
    assert down.connections == 1


def test_once_the_breaker_opens_callers_get_503_at_once_with_retry_after(gateway, client, settings):
    down = gateway(status=503)
    settings.CIRCUIT_FAIL_MAX, settings.CIRCUIT_RESET_SECONDS = 3, 7
    headers = {"Authorization": "Bearer some-token"}
    answers = [client.get(f"{PREFIX}/orders", headers=headers) for _ in range(6)]
    assert [answer.status_code for answer in answers] == [503] * 6
    assert down.connections == 3  # the breaker spared accounts the last three
    assert answers[0]["Retry-After"] == "1"
    assert answers[-1]["Retry-After"] == "7"
    assert answers[-1].json()["error"]["code"] == "dependency_unavailable"


def test_a_replica_opens_once_every_call_it_can_have_in_flight_has_failed(gateway, settings, monkeypatch):
    """Four threads stuck on a paused dependency time out together: the fifth failure that CIRCUIT_FAIL_MAX asks
    for could only come from a second round of timeouts."""
    down = gateway(status=503)
    settings.CIRCUIT_FAIL_MAX = 5
    monkeypatch.setattr(http, "calls_at_once", lambda: 4)
    catalog = client_for("service2")
    for _ in range(6):
        with pytest.raises(DependencyUnavailable):
            catalog.request("GET", "/products")
    assert down.connections == 4


def test_after_the_reset_a_probe_of_health_is_the_trial_and_callers_still_fail_fast(gateway, settings):
    down = gateway(status=503)
    settings.CIRCUIT_FAIL_MAX, settings.CIRCUIT_RESET_SECONDS = 2, 0.2
    catalog = client_for("service2")
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            catalog.request("GET", "/products")
    time.sleep(0.3)  # the breaker's reset time (0.2 s, its own clock) passes: what is tested is what comes after
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as refused:
        catalog.request("GET", "/products")
    assert time.monotonic() - started < 0.1  # not the trial: the probe is
    assert "circuit open" in refused.value.details["reason"]
    deadline = time.monotonic() + 5
    while len(down.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert down.requests == ["GET /api/service2/products HTTP/1.1"] * 2 + ["GET /api/service2/health HTTP/1.1"]
