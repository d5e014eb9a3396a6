"""On Docker Swarm (`make test-swarm`): PostgreSQL per service over TCP, replicas found by DNS, rolling updates that
fail no request, a broken image rolled back on its own, and a killed task replaced."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from autoscale import PrometheusTask
from newcomer import labelled, make, newcomer_environment, remove_project
from project import ACCOUNTS, CATALOG, GATEWAY, GATEWAY_UPSTREAMS, ROOT, SERVICES, STATUS, routed_replicas, run
from stack import Autoscaler, SteadyLoad, add_product_note, drop_product_updated_at, reserve_port, tree_copy, wait_until

# No stack of its own, though it scales, redeploys and kills tasks: a second swarm stack would make and leave a
# swarm of its own under the first. It runs last (conftest.py), after every module that shares the stack.
pytestmark = pytest.mark.runs_last

HEALTH = f"/api/{ACCOUNTS}/health/"
SWARM_TOOL = [sys.executable, str(ROOT / "swarm" / "swarm.py")]


def test_each_service_has_its_own_postgresql_and_the_gateway_reaches_it_over_tcp(stack):
    for service in SERVICES:
        assert len(stack.containers(f"{service}-db")) == 1, service
        result = stack.container(service).exec_run(
            ["django-admin", "shell", "-c", "from django.db import connection as c; print(c.vendor)"]
        )
        assert result.output.decode().split()[-1] == "postgresql", service
    upstreams = stack.container(GATEWAY).exec_run(["cat", GATEWAY_UPSTREAMS]).output.decode()
    replicas = routed_replicas(upstreams)
    assert sorted(replicas) == SERVICES
    assert all(addresses and address.endswith(":3031") for addresses in replicas.values() for address in addresses)


def test_the_stack_mounts_no_volume_a_compose_project_of_its_name_would(stack):
    """On main, `make swarm-up` after `make up DB=postgres` mounted the Compose variant's database volumes, made
    with other passwords: the services waited 5 minutes in their migrations and failed."""
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.postgres.yml"]
    config = run("docker", "compose", "--project-name", stack.project, *files, "config", "--format", "json", cwd=ROOT)
    composes = {volume["name"] for volume in json.loads(config.stdout)["volumes"].values()}
    services = stack.docker.services.list(filters={"label": f"com.docker.stack.namespace={stack.project}"})
    mounted = {mount["Source"] for service in services
               for mount in service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts", [])
               if mount["Type"] == "volume"}  # fmt: skip
    assert len([source for source in mounted if source.endswith("-db-data")]) == len(SERVICES), mounted
    assert mounted.isdisjoint(composes), mounted & composes


def test_only_the_gateway_port_is_published(stack):
    published = {
        service.name: [port["PublishedPort"] for port in service.attrs["Endpoint"].get("Ports", [])]
        for service in stack.docker.services.list(filters={"label": f"com.docker.stack.namespace={stack.project}"})
    }
    assert published.pop(stack.service_name(GATEWAY)) == [stack.port]
    assert all(ports == [] for ports in published.values()), published


def test_three_replicas_after_docker_service_scale_share_the_requests(stack, three_replicas):
    seen = stack.replicas_answering(HEALTH, 3, timeout=10, interval=0.05)
    assert seen == {f"{ACCOUNTS}/{hostname}" for hostname in three_replicas}
    served = Counter(stack.served_by(HEALTH) for _ in range(300))
    assert len(served) == 3
    assert min(served.values()) >= 60


def test_the_status_page_shows_each_replica_with_its_task_and_node_and_counts_what_it_served(stack, three_replicas):
    """Over TCP the gateway's status plane reads each replica's stats server on the service's network, and asks
    its health (once) for its task's name and node."""
    names = {container.attrs["Config"]["Hostname"]: container.labels["com.docker.swarm.task.name"].rsplit(".", 1)[0]
             for container in stack.containers(ACCOUNTS)}  # fmt: skip
    expected = {hostname: (names[hostname], node) for hostname, node in stack.nodes_of(ACCOUNTS).items()}

    def shown() -> dict[str, tuple]:
        return {instance: (row["name"], row["node"]) for instance, row in stack.shown_on_status_page(ACCOUNTS).items()}

    assert wait_until(lambda: shown() == expected, timeout=10), (shown(), expected)
    sent = 90
    assert [stack.get(HEALTH).status_code for _ in range(sent)] == [200] * sent
    window = stack.status_page()["window_seconds"]

    def counted() -> float:
        return sum(row["requests_per_second"] or 0 for row in stack.shown_on_status_page(ACCOUNTS).values()) * window

    assert wait_until(lambda: counted() >= sent, timeout=5), counted()


def test_prometheus_scrapes_each_task_with_its_node_and_make_autoscale_scales_through_its_task(stack):
    """METRICS=1 (the suite's shared stack has it): Prometheus on the status network, publishing no port (the
    test above); `make autoscale SWARM=1` asks it through its task and scales with Swarm, saying so on the status
    page. Its policy is Compose's (test_autoscale.py, scripts/tests): here MIN=2 is its one decision."""
    prometheus = PrometheusTask(stack.project)
    served = f'microstack_uwsgi_requests_total{{service="{ACCOUNTS}"}}'

    def nodes_scraped() -> list[str]:
        return sorted(series["metric"]["node"] for series in prometheus.result(served))

    def nodes_running() -> list[str]:
        return sorted(stack.nodes_of(ACCOUNTS).values())

    assert wait_until(lambda: nodes_scraped() == nodes_running(), timeout=30), (nodes_scraped(), nodes_running())
    autoscaler = Autoscaler(stack, 2, 2, "--swarm", "--interval", "1", "--seconds", "120")
    try:
        scaled = wait_until(lambda: autoscaler.first("2 replica(s) serving") is not None, timeout=120)
    finally:
        autoscaler.stop()
    try:
        said = autoscaler.said()
        assert scaled and len(nodes_running()) == 2, said
        assert "1 -> 2 replicas: 1 replica(s) is outside MIN=2 MAX=2" in said, said
        assert [decision["replicas"] for decision in stack.status_page()["autoscale"]] == [2]
        assert wait_until(lambda: nodes_scraped() == nodes_running(), timeout=30), (nodes_scraped(), nodes_running())
    finally:
        stack.scale(ACCOUNTS, 1)


def test_no_service_reaches_another_services_replicas_or_their_stats(stack):
    """Each service's network holds its replicas and the gateway alone: a replica's uWSGI port and its stats
    server are the gateway's to reach. On main every service shared one backend network."""
    probe = (
        "import socket, sys\n"
        "try: socket.getaddrinfo(sys.argv[1], 3032)\nexcept OSError: print('unknown')\nelse: print('found')"
    )

    def looks_up(service: str, name: str) -> str:
        return stack.container(service).exec_run(["python", "-c", probe, name]).output.decode().strip()

    assert looks_up(CATALOG, f"tasks.{ACCOUNTS}") == "unknown"
    assert looks_up(ACCOUNTS, f"tasks.{CATALOG}") == "unknown"
    assert looks_up(ACCOUNTS, f"tasks.{ACCOUNTS}") == "found"  # the probe can tell
    assert looks_up(CATALOG, "nginx") == "found"  # and the gateway's internal listener is there


def test_the_status_plane_reaches_the_replicas_the_gateway_routes_to_and_no_other_address(stack):
    """The status task asks the gateway's status plane for a replica's stats by its address: one the gateway does
    not route to is refused (404), so the plane is no proxy to anything else on the services' networks."""
    (routed,) = routed_replicas(stack.container(GATEWAY).exec_run(["cat", GATEWAY_UPSTREAMS]).output.decode())[ACCOUNTS]
    ask = (
        "import sys, requests, requests_unixsocket\n"
        "session = requests_unixsocket.Session()\n"
        "for path in sys.argv[1:]:\n"
        "    print(session.get('http+unix://%2Frun%2Fgateway-status%2Fstatus.sock' + path, timeout=3).status_code)"
    )
    paths = [f"/_gateway/stats/{ACCOUNTS}/{routed}", f"/_gateway/stats/{ACCOUNTS}/10.255.255.1:3031",
             f"/_gateway/replica/{ACCOUNTS}/{routed}", f"/_gateway/replica/{ACCOUNTS}/10.255.255.1:3031"]  # fmt: skip
    answered = stack.container(STATUS).exec_run(["python", "-c", ask, *paths]).output.decode().split()
    assert answered == ["200", "404", "200", "404"]


def replaced_by_a_healthy_task(stack, victim_id: str) -> bool:
    tasks = stack.containers(ACCOUNTS)
    healthy = all(task.attrs["State"]["Health"]["Status"] == "healthy" for task in tasks)
    return len(tasks) == 2 and victim_id not in {task.id for task in tasks} and healthy


def test_a_killed_task_is_replaced_while_its_sibling_serves(stack):
    stack.scale(ACCOUNTS, 2)
    try:
        victim = stack.containers(ACCOUNTS)[0]
        with SteadyLoad(stack, HEALTH, max_seconds=60) as load:
            os.kill(victim.attrs["State"]["Pid"], signal.SIGKILL)  # a crash, not a stop: Swarm must notice
            replaced = wait_until(lambda: replaced_by_a_healthy_task(stack, victim.id), timeout=60, interval=0.5)
        assert replaced
        assert load.failed == 0, load.outcomes
    finally:
        stack.scale(ACCOUNTS, 1)


def tasks_of_other_services(stack, service: str) -> set[str]:
    return {c.id for other in SERVICES if other != service for c in stack.containers(other)}


def test_swarm_deploy_rolls_a_new_image_under_load_failing_no_request_and_touching_no_other_service(stack):
    new_image = stack.derived_image(CATALOG, f'LABEL rolled="{time.time()}"')
    others = tasks_of_other_services(stack, CATALOG)
    with SteadyLoad(stack, f"/api/{CATALOG}/products", max_seconds=120) as load:
        result = stack.deploy(CATALOG, new_image)
    assert result.returncode == 0, result.stdout + result.stderr
    assert load.failed == 0, load.outcomes
    assert load.sent > 50
    assert stack.task_image(CATALOG) == new_image
    assert [c.image.tags for c in stack.containers(CATALOG)] == [[new_image]]
    assert tasks_of_other_services(stack, CATALOG) == others


def test_new_workers_roll_across_the_swarm_failing_no_request_of_a_client_that_never_retries(stack):
    """make scale's workers, on Swarm: `docker service update --env-add` replaces each task start-first (the
    stack's update_config) and the gateway drops the old one before it stops; a client that sends each request
    once loses none."""
    update = ["docker", "service", "update", "--detach=false", "--env-add", "UWSGI_PROCESSES=4",
              "--env-add", "UWSGI_THREADS=1", stack.service_name(ACCOUNTS)]  # fmt: skip
    old = {container.id for container in stack.containers(ACCOUNTS)}
    with SteadyLoad(stack, HEALTH, max_seconds=120, retry=False) as load:
        run(*update, environment=stack.engine_environment(), timeout=300)
        updated_at = load.sent
        assert wait_until(lambda: load.sent >= updated_at + 50, timeout=10, interval=0.05)
    assert set(load.outcomes) == {200}, load.outcomes
    assert not old & {container.id for container in stack.containers(ACCOUNTS)}


def test_a_new_image_that_never_becomes_healthy_is_rolled_back_and_the_old_keeps_serving(stack):
    running_image = stack.task_image(CATALOG)
    broken_image = stack.derived_image(CATALOG, 'ENTRYPOINT ["sh", "-c", "echo this image is broken >&2; exit 1"]')
    with SteadyLoad(stack, f"/api/{CATALOG}/products", max_seconds=120) as load:
        result = stack.deploy(CATALOG, broken_image)
    assert result.returncode != 0
    assert "rolled it back" in result.stderr, result.stderr
    assert load.failed == 0, load.outcomes
    assert stack.task_image(CATALOG) == running_image
    assert wait_until(lambda: stack.answers(f"/api/{CATALOG}/products"), timeout=10)


def test_an_added_nullable_column_rolls_across_the_swarm_under_keep_alive_readers_with_no_failed_request(
    stack, tmp_path
):
    """The expand step of a schema change (docs/adr/0006) by `make swarm-deploy`: a new task migrates while the old
    ones serve; then the release before it again, on the expanded schema."""
    running = stack.task_image(CATALOG)
    tree = tree_copy(tmp_path / "tree")
    add_product_note(tree / CATALOG)
    expanded = stack.derived_image(CATALOG, f"COPY {CATALOG}/catalog/ /srv/{CATALOG}/catalog/", context=tree)
    staff_token = stack.staff_login("swarm-staff")
    product_id = stack.product(5, staff_token)
    readers = [SteadyLoad(stack, f"/api/{CATALOG}/products", max_seconds=240) for _ in range(4)]
    for reader in readers:
        reader.thread.start()
    try:
        rolled = stack.deploy(CATALOG, expanded)
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        noted = stack.http.patch(f"{stack.base_url}/api/{CATALOG}/products/{product_id}", json={"note": "expanded"},
                                 headers={"Authorization": f"Bearer {staff_token}"}, timeout=10)  # fmt: skip
        assert noted.status_code == 200 and noted.json()["note"] == "expanded", noted.text
        back = stack.deploy(CATALOG, running)
        assert back.returncode == 0, back.stdout + back.stderr
    finally:
        for reader in readers:
            reader.__exit__()
    for reader in readers:
        assert reader.failed == 0, reader.outcomes
        assert reader.sent > 50, reader.outcomes


def test_a_migration_the_running_release_cannot_run_against_is_refused_before_any_task_runs_it(stack, tmp_path):
    """make swarm-deploy checks the migrations in the image it builds, as make deploy does (docs/adr/0006)."""
    tree = tree_copy(tmp_path / "tree")
    drop_product_updated_at(tree / CATALOG)
    running = stack.task_image(CATALOG)
    command = [sys.executable, str(tree / "swarm" / "swarm.py"), "deploy", CATALOG, "--stack", stack.project,
               "--state-dir", str(stack.state_dir)]  # fmt: skip
    refused = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0
    assert "column catalog_product.updated_at is gone (dropped or renamed)" in refused.stderr, refused.stderr
    assert f"Nothing was changed: {stack.project}_{CATALOG} runs {running}." in refused.stderr
    assert stack.task_image(CATALOG) == running


def test_compose_postgresql_swarm_and_compose_again_run_one_after_another_on_one_engine(tmp_path):
    """docs/postgresql-swarm-tls.md's sequence, under one project name: each variant's down leaves nothing of
    the project on the engine, so the next one starts. On main, `make down` after `make up DB=postgres` left the
    databases' networks, and `make swarm-up` could not create its own of the same names."""
    port, port_lock = reserve_port()
    environment = newcomer_environment(GATEWAY_PORT=str(port), SWARM_STATE_DIR=str(tmp_path))
    project = environment["COMPOSE_PROJECT_NAME"]

    def step(*arguments: str) -> None:
        result = make(*arguments, environment=environment, timeout=600)
        assert result.returncode == 0, f"make {' '.join(arguments)}:\n{result.stdout}\n{result.stderr}"

    try:
        step("up", "DB=postgres")
        step("down")
        assert (labelled("container", project), labelled("network", project)) == ([], [])
        step("swarm-up")
        step("swarm-down", "V=1")
        step("up")
        step("down", "V=1")
        assert (labelled("container", project), labelled("network", project), labelled("volume", project)) == (
            [],
            [],
            [],
        )
    finally:
        subprocess.run([*SWARM_TOOL, "down", "--volumes", "--images"], env=environment, capture_output=True)
        remove_project(environment)
        port_lock.close()
