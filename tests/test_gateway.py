"""The gateway: its own health, JSON for what it refuses, and the request id every request carries."""

import http.client
import json
import os
import re
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import requests

from project import CATALOG, GATEWAY, ROOT, SERVICES, engine_time, gateway_log_delay_seconds
from stack import wait_until


def test_gateway_answers_its_own_health(stack):
    response = stack.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"service": "gateway", "status": "ok"}


def test_unknown_path_is_a_json_404(stack):
    response = stack.get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/no-such-service/health/", "/api/no-such-service"])
def test_a_service_the_stack_does_not_have_is_a_json_404(stack, path):
    response = stack.get(path, allow_redirects=False)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("suffix", ["", "/"])
@pytest.mark.parametrize("service", SERVICES)
def test_a_service_prefix_names_the_service_and_links_to_what_it_serves(stack, service, suffix):
    response = stack.get(f"/api/{service}{suffix}", allow_redirects=False)
    assert response.status_code == 200
    assert response.json()["service"] == service
    for link in response.json()["links"].values():
        assert stack.get(link).status_code == 200, link


@pytest.mark.parametrize("path", ["/health", "/health/", "/products", "/products/"])
def test_a_path_answers_with_or_without_its_trailing_slash(stack, path):
    service = SERVICES[0] if path.startswith("/health") else SERVICES[1]
    assert stack.get(f"/api/{service}{path}", allow_redirects=False).status_code == 200


def test_client_request_id_is_returned_by_the_service(stack):
    response = stack.get(f"/api/{SERVICES[0]}/health/", headers={"X-Request-ID": "test-id-123"})
    assert response.headers["X-Request-ID"] == "test-id-123"


def test_gateway_assigns_a_request_id_that_the_service_logs(stack, service):
    response = stack.get(f"/api/{service}/health/")
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)

    def logged() -> list[tuple[str, str]]:  # the line is written once the response has gone: it may come after
        records = [json.loads(line) for line in stack.container(service).logs().decode().splitlines() if line]
        return [(record["logger"], record["path"]) for record in records if record.get("request_id") == request_id]

    wait_until(lambda: logged() != [], timeout=5)
    assert logged() == [("servicekit.access", f"/api/{service}/health")]


def test_the_gateway_logs_each_request_once_and_hands_the_lines_over_in_batches(stack):
    """One JSON line per request with the id its client saw, in the log within nginx.conf's flush interval, and
    reaching the engine a batch at a time: a write() per request cost the engine's log pipeline as much CPU as the
    gateway's own work on the request (docs/scaling.md)."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    request_ids = [f"batched-{uuid.uuid4().hex[:12]}" for _ in range(30)]
    for request_id in request_ids:  # about 15 ms apart: written one by one, each line would arrive on its own
        assert stack.get(f"/api/{CATALOG}/health", headers={"X-Request-ID": request_id}).status_code == 200
        time.sleep(0.01)
    gateway = stack.container(GATEWAY)

    def arrived() -> list[tuple[datetime, dict]]:
        """Our requests' lines, each with when the engine read it (its log timestamp, to the microsecond)."""
        logged = gateway.logs(stdout=True, stderr=False, timestamps=True, since=since).decode().splitlines()
        lines = [(stamp, json.loads(text)) for stamp, _, text in (line.partition(" ") for line in logged)]
        return [(engine_time(stamp), record) for stamp, record in lines if record.get("request_id") in request_ids]

    assert wait_until(lambda: len(arrived()) >= len(request_ids), timeout=gateway_log_delay_seconds() + 5)
    records = [record for _, record in arrived()]
    assert sorted(record["request_id"] for record in records) == sorted(request_ids)  # each once
    for record in records:
        assert (record["service"], record["method"], record["path"]) == ("gateway", "GET", f"/api/{CATALOG}/health")
        assert (record["status"], record["upstream_status"]) == (200, "200")
        assert record["upstream"].startswith("unix:"), record
    # A burst: lines the engine read less than 5 ms apart, one write of nginx's (4 KB hold about 12 lines).
    instants = sorted(instant for instant, _ in arrived())
    bursts = 1 + sum(later - earlier > timedelta(milliseconds=5) for earlier, later in pairwise(instants))
    assert bursts <= len(request_ids) // 3, f"{bursts} writes for {len(request_ids)} lines"


def test_malformed_request_id_is_replaced(stack):
    response = stack.get(f"/api/{SERVICES[0]}/health/", headers={"X-Request-ID": "x" * 500})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_one_setting_raises_the_body_limit_of_the_gateway(tmp_path):
    """MAX_BODY_BYTES: the gateway renders it as its own limit; every service's settings read the same name (the
    contract's test_the_body_limit_is_the_one_the_gateway_is_given), and docker-compose.yml gives it to both."""
    rendered = tmp_path / "gateway"
    environment = {**os.environ, "MAX_BODY_BYTES": "2097152"}
    subprocess.run([ROOT / "nginx" / "entrypoint.sh", "render", rendered], env=environment, check=True)
    assert "client_max_body_size 2097152;" in (rendered / "generated" / "limits.conf").read_text().splitlines()
    assert "client_max_body_size" not in (ROOT / "nginx" / "nginx.conf").read_text()  # no second, fixed limit


def test_oversized_body_is_a_json_413(stack):
    response = stack.request("POST", f"/api/{SERVICES[0]}/health/", data=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_malformed_request_is_a_json_400(stack):
    # A Host header with a space is refused by nginx itself, before any route.
    raw = requests.Request("GET", stack.base_url + "/healthz", headers={"Host": "bad host"}).prepare()
    response = stack.http.send(raw, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def raw_response(stack, request: bytes) -> tuple[int, dict[str, str], dict]:
    """Sends bytes as they are (requests would refuse to send most of these) and reads status, headers, JSON body."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as connection:
        connection.sendall(request)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, dict(response.getheaders()), json.loads(response.read())


GATEWAY_ERRORS = {
    "an empty URI": (b"GET /%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"),
    "a malformed request line": (b"NOT HTTP AT ALL\r\n\r\n", 400, "bad_request"),
    "TRACE": (b"TRACE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "method_not_allowed"),
    "a 10 KB URI": (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "uri_too_long"),
    "a 9 KB header": (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        431,
        "request_header_fields_too_large",
    ),
    "a Host not served": (b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421, "misdirected_request"),
}


@pytest.mark.parametrize("case", GATEWAY_ERRORS, ids=list(GATEWAY_ERRORS))
def test_every_error_the_gateway_makes_is_json_with_the_right_status(stack, case):
    request, status, code = GATEWAY_ERRORS[case]
    answered, headers, body = raw_response(stack, request)
    assert (answered, body["error"]["code"]) == (status, code)
    assert headers["Content-Type"].startswith("application/json")


def test_a_405_from_the_gateway_says_what_is_allowed(stack):
    _, headers, _ = raw_response(stack, GATEWAY_ERRORS["TRACE"][0])
    assert "GET" in headers["Allow"].split(", ")


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


@pytest.mark.parametrize("path", ["/healthz", "/no/such/path", f"/api/{SERVICES[1]}/products"])
def test_every_response_carries_the_security_headers_once_and_no_server_version(stack, path):
    headers = stack.get(path).headers
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert headers["Server"] == "nginx"
    assert "Strict-Transport-Security" not in headers  # HSTS only over HTTPS
