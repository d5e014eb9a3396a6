"""Every /api/<service>/ route reaches its own service, which keeps the shared contract."""


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


def test_worker_counts_come_from_the_environment(stack, service):
    server = stack.get(f"/api/{service}/health/").json()["server"]
    environment = dict(item.split("=", 1) for item in stack.container(service).attrs["Config"]["Env"])
    assert server["processes"] == int(environment["UWSGI_PROCESSES"])
    assert server["threads"] == int(environment["UWSGI_THREADS"])
