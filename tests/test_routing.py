"""Every /api/<service>/ route reaches its own service, which keeps the shared contract."""

from preflight import worker_defaults


def test_each_route_reaches_its_own_service(stack, service):
    response = stack.get(f"/api/{service}/health/")
    body = response.json()
    assert response.status_code == 200
    assert body["service"] == service
    assert body["status"] == "ok"


def test_instance_is_the_container_hostname(stack, service):
    body = stack.get(f"/api/{service}/health/").json()
    assert body["instance"] == stack.container(service).attrs["Config"]["Hostname"]


def test_every_response_says_which_instance_served_it(stack, service):
    response = stack.get(f"/api/{service}/health/")
    assert response.headers["X-Served-By"] == f"{service}/{response.json()['instance']}"


def test_service_errors_keep_the_json_error_shape(stack, service):
    response = stack.get(f"/api/{service}/no-such-route/")
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert response.headers["X-Served-By"].startswith(f"{service}/")


def test_each_service_runs_the_workers_and_request_limit_set_for_it(stack, service):
    server = stack.get(f"/api/{service}/health/").json()["server"]
    number = service.removeprefix("service")
    expected_processes = int(stack.environment.get(f"SERVICE{number}_PROCESSES") or worker_defaults()["PROCESSES"])
    expected_threads = int(stack.environment.get(f"SERVICE{number}_THREADS") or worker_defaults()["THREADS"])
    expected_cheaper = int(stack.environment.get(f"SERVICE{number}_CHEAPER", 0))
    assert (server["processes"], server["threads"]) == (expected_processes, expected_threads)
    assert server["cheaper"] == expected_cheaper
    # The suite's stacks set it (tests/conftest.py): the entrypoint passes it to uWSGI after uwsgi.ini's default.
    assert server["request_timeout_seconds"] == int(stack.environment["REQUEST_TIMEOUT_SECONDS"])
