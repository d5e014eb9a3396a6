"""What the containers are: one per service (and one per database, on PostgreSQL) plus the gateway and the status
page (and Prometheus, in the metrics profile), healthy, unprivileged, with private sockets."""

from project import CATALOG, GATEWAY, METRICS_PROFILE, PROMETHEUS, SERVICES, STATUS
from stack import DATABASE_SERVICES, container_cpu_seconds


def test_one_container_per_service_and_its_database_plus_the_gateway_and_the_status_page(stack):
    services = sorted(container.labels["com.docker.compose.service"] for container in stack.containers())
    metrics = [PROMETHEUS] if METRICS_PROFILE in stack.environment.get("COMPOSE_PROFILES", "").split(",") else []
    assert services == sorted([*SERVICES, *DATABASE_SERVICES, GATEWAY, STATUS, *metrics])


def test_every_container_is_healthy(stack):
    for container in stack.containers():
        assert container.attrs["State"]["Health"]["Status"] == "healthy", container.name


def test_every_container_runs_as_a_non_root_user(stack):
    for container in stack.containers():
        assert container.attrs["Config"]["User"] not in ("", "root", "0"), container.name
        uid = container.exec_run(["id", "-u"]).output.decode().strip()
        assert uid != "0", container.name


def test_no_service_image_carries_the_benchs_applications_gunicorn_the_status_page_or_test_code(stack):
    """They are the bench's image's and the status page's alone (servicekit/Dockerfile, targets bench and status),
    and the tests' helpers the development environment's: a service runs what it needs, and the status page runs
    no service."""
    modules = ("gunicorn", "bench_apps", "servicekit.bench", "statuspage", "servicekit.status", "servicekit_testing",
               "servicekit.testing", "pytest")  # fmt: skip
    files = ("/etc/uwsgi/status.ini", "/srv/status")
    probe = (
        "import importlib.util as u, os; "
        f"print([m for m in {modules!r} if u.find_spec(m)] + [f for f in {files!r} if os.path.exists(f)])"
    )
    for service in SERVICES:
        image = stack.container(service).image
        found = stack.docker.containers.run(image, ["python", "-c", probe], entrypoint=[], remove=True)
        assert found.decode().strip() == "[]", service
    status_probe = (
        "import importlib.util as u, os; "
        "print([bool(u.find_spec('statuspage')), os.path.exists('/etc/uwsgi/uwsgi.ini')])"
    )
    found = stack.docker.containers.run(
        stack.container(STATUS).image, ["python", "-c", status_probe], entrypoint=[], remove=True
    )
    assert found.decode().strip() == "[True, False]"


def test_every_container_log_is_capped_in_size(stack):
    for container in stack.containers():
        log = container.attrs["HostConfig"]["LogConfig"]
        assert log["Type"] == "local" and log["Config"]["max-size"] == "10m", (container.name, log)
        assert log["Config"]["max-file"] == "3", container.name


def test_every_container_restarts_unless_stopped(stack):
    for container in stack.containers():
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", container.name


def test_only_the_gateway_and_prometheus_publish_a_port_and_only_on_loopback(stack):
    published = {GATEWAY: stack.port, PROMETHEUS: stack.prometheus_port}
    for container in stack.containers():
        bindings = [
            binding
            for port_bindings in (container.attrs["HostConfig"]["PortBindings"] or {}).values()
            for binding in port_bindings
        ]
        service = container.labels["com.docker.compose.service"]
        if service in published:
            assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(published[service])}]
        else:
            assert bindings == [], container.name


def test_each_socket_is_in_its_service_directory_named_by_its_replica(stack, service):
    hostname = stack.container(service).attrs["Config"]["Hostname"]
    result = stack.container(GATEWAY).exec_run(["stat", "-c", "%F %a %G", f"/run/uwsgi/{service}/{hostname}.sock"])
    assert result.exit_code == 0, result.output
    assert result.output.decode().strip() == "socket 660 sockets"


def test_the_gateway_cannot_write_into_a_service_socket_directory(stack, service):
    result = stack.container(GATEWAY).exec_run(["touch", f"/run/uwsgi/{service}/intruder"])
    assert result.exit_code != 0


def test_a_service_cannot_see_another_service_socket(stack):
    first, second = SERVICES[0], SERVICES[1]
    result = stack.container(first).exec_run(["ls", f"/run/uwsgi/{second}"])
    assert result.exit_code != 0


def test_the_cpu_time_the_tools_read_is_the_containers_own(stack):
    # make bench and make sizes read a container's CPU time from its cgroup: it must be the one the engine
    # reports for that container, between a read before the engine's figure and one after.
    container = stack.container(CATALOG)
    before = container_cpu_seconds(container)
    for _ in range(50):
        stack.get(f"/api/{CATALOG}/health/")
    reported = stack.docker.api.stats(container.id, stream=False)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    after = container_cpu_seconds(container)
    assert before < reported <= after
