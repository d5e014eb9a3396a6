"""The gateway: its own health, JSON for what it refuses, and the request id every request carries."""

import re

import requests

from stack import SERVICES


def test_gateway_answers_its_own_health(stack):
    response = stack.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"service": "gateway", "status": "ok"}


def test_unknown_path_is_a_json_404(stack):
    response = stack.get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"


def test_service_prefix_without_slash_redirects_relatively(stack):
    response = stack.get(f"/api/{SERVICES[0]}", allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"/api/{SERVICES[0]}/"


def test_client_request_id_is_returned_by_the_service(stack):
    response = stack.get(f"/api/{SERVICES[0]}/health/", headers={"X-Request-ID": "test-id-123"})
    assert response.headers["X-Request-ID"] == "test-id-123"


def test_gateway_assigns_a_request_id_that_the_service_logs(stack, service):
    response = stack.get(f"/api/{service}/health/")
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    logs = stack.container(service).logs().decode()
    assert f'"request_id": "{request_id}"' in logs


def test_malformed_request_id_is_replaced(stack):
    response = stack.get(f"/api/{SERVICES[0]}/health/", headers={"X-Request-ID": "x" * 500})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


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
