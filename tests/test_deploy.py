"""Deploying one part of the stack under load: zero failed requests, and nothing else touched."""

import os
import subprocess
import sys
import time
import uuid

import pytest

from project import CATALOG, GATEWAY, ROOT, SERVICES
from stack import SteadyLoad, add_product_note, drop_product_updated_at, tree_copy, wait_until

# A stack of its own, shared with the other "rollouts" modules: it scales and redeploys services.
pytestmark = pytest.mark.own_stack("rollouts")

DEPLOY = [sys.executable, str(ROOT / "scripts" / "deploy.py")]


def deploy(stack, *arguments: str) -> subprocess.CompletedProcess:
    environment = {**stack.compose_environment()}
    command = [*DEPLOY, *arguments, "--project", stack.project]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)


def container_ids(stack, services) -> dict[str, set[str]]:
    return {service: {container.id for container in stack.containers(service)} for service in services}


def restart_counts(stack, services) -> dict[str, int]:
    return {c.id: c.attrs["RestartCount"] for service in services for c in stack.containers(service)}


@pytest.fixture
def load_on_every_route(stack):
    loads = [SteadyLoad(stack, f"/api/{service}/health/", max_seconds=120) for service in SERVICES]
    for load in loads:
        load.thread.start()
    yield loads
    for load in loads:
        load.__exit__()


def test_rolling_a_service_under_load_fails_no_request_and_touches_no_other_service(stack, load_on_every_route):
    others = [service for service in SERVICES if service != CATALOG] + [GATEWAY]
    before_ids, before_restarts = container_ids(stack, others), restart_counts(stack, others)
    before_catalog = container_ids(stack, [CATALOG])[CATALOG]

    since = time.time()
    result = deploy(stack, CATALOG, "--no-build")

    for load in load_on_every_route:
        load.__exit__()
    assert result.returncode == 0, result.stdout + result.stderr
    # The drain handshake: each old replica left the gateway's routes before its socket closed (on main, a
    # CRITICAL "connect() ... failed (2: No such file or directory)" per request in flight).
    assert stack.gateway_errors(since) == []
    for load in load_on_every_route:
        assert load.failed == 0, (load.path, load.outcomes)
        assert load.sent > 20, (load.path, load.outcomes)
    assert container_ids(stack, others) == before_ids
    assert restart_counts(stack, others) == before_restarts
    after_catalog = container_ids(stack, [CATALOG])[CATALOG]
    assert len(after_catalog) == 1 and after_catalog.isdisjoint(before_catalog)


@pytest.fixture
def never_healthy_image(stack):
    """The catalog's image replaced by one whose healthcheck always fails; the real one is put back after."""
    image = f"{stack.project}-{CATALOG}"  # the image Compose builds for the catalog
    keep = f"{image}-kept-{uuid.uuid4().hex[:6]}"
    stack.docker.images.get(image).tag(keep)
    dockerfile = f'FROM {image}\nHEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD ["false"]\n'
    subprocess.run(
        ["docker", "build", "-q", "-t", image, "-"],
        input=dockerfile,
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    yield image
    stack.docker.images.get(keep).tag(image)
    stack.docker.images.remove(keep)


@pytest.mark.one_database  # a healthcheck that fails
def test_a_new_image_that_never_becomes_healthy_aborts_and_the_old_keeps_serving(stack, never_healthy_image):
    before = container_ids(stack, [CATALOG])[CATALOG]
    with SteadyLoad(stack, f"/api/{CATALOG}/health/", max_seconds=120) as load:
        result = deploy(stack, CATALOG, "--no-build", "--timeout", "6")
    assert result.returncode != 0
    assert "not healthy" in result.stderr or "unhealthy" in result.stderr
    assert container_ids(stack, [CATALOG])[CATALOG] == before
    assert load.failed == 0, load.outcomes


@pytest.fixture
def changed_gateway_config(tmp_path):
    """A copy of nginx/ whose /healthz says which configuration answers."""
    config = tmp_path / "nginx"
    subprocess.run(["cp", "-r", str(ROOT / "nginx"), str(config)], check=True)
    health = config / "snippets" / "healthz.inc"
    health.write_text(health.read_text().replace('"status": "ok"}', '"status": "ok", "config": "changed"}'))
    return config


@pytest.mark.one_database  # nginx's
def test_a_gateway_configuration_change_reloads_gracefully_under_load(stack, changed_gateway_config):
    gateway_id = stack.container(GATEWAY).id
    with SteadyLoad(stack, f"/api/{SERVICES[0]}/health/") as load:
        result = deploy(stack, GATEWAY, "--config-dir", str(changed_gateway_config))
        assert result.returncode == 0, result.stdout + result.stderr
        assert wait_until(lambda: stack.get("/healthz").json().get("config") == "changed", timeout=5)
    assert load.failed == 0, load.outcomes
    assert stack.container(GATEWAY).id == gateway_id

    original = deploy(stack, GATEWAY, "--config-dir", str(ROOT / "nginx"))
    assert original.returncode == 0, original.stderr
    assert wait_until(lambda: "config" not in stack.get("/healthz").json(), timeout=5)


@pytest.mark.one_database  # nginx's
def test_an_invalid_gateway_configuration_is_refused_and_the_running_one_stays(stack, changed_gateway_config):
    (changed_gateway_config / "conf.d" / "gateway.conf").write_text("this is not nginx configuration;\n")
    result = deploy(stack, GATEWAY, "--config-dir", str(changed_gateway_config))
    assert result.returncode != 0
    assert "invalid" in result.stderr
    assert stack.get("/healthz").status_code == 200
    assert stack.get(f"/api/{SERVICES[0]}/health/").status_code == 200


# --- schema changes: expand and contract (docs/adr/0006) ---------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    return tree_copy(tmp_path / "tree")


def deploy_from(tree, stack, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(tree / "scripts" / "deploy.py"), *arguments, "--project", stack.project]
    return subprocess.run(command, cwd=tree, env=stack.compose_environment(), capture_output=True, text=True,
                          timeout=900)  # fmt: skip


def test_a_migration_the_running_release_cannot_run_against_is_refused_before_any_replica_runs_it(stack, tree):
    """The catalog without Product.updated_at, and the migration that drops the column. On main this deployed in
    seconds, and the old replica, still serving, answered 500 to 320 of 2,859 reads: it selects the column. The
    check runs in the new image, on the stack's database engine (and SQLite); the image's name is the running
    release's again after it."""
    drop_product_updated_at(tree / CATALOG)
    image = stack.docker.images.get(stack.image_of(CATALOG)).id
    before = container_ids(stack, [CATALOG])

    result = deploy_from(tree, stack, CATALOG)

    assert result.returncode != 0
    gone = "0003_remove_product_updated_at: column catalog_product.updated_at is gone (dropped or renamed)"
    assert gone in result.stderr, result.stderr
    assert "1. expand" in result.stderr and "4. contract" in result.stderr
    assert "Nothing was changed: no replica runs the new image." in result.stderr
    assert stack.docker.images.get(stack.image_of(CATALOG)).id == image
    assert container_ids(stack, [CATALOG]) == before


def test_an_added_nullable_column_deploys_under_keep_alive_readers_with_no_failed_request(stack, tree, staff_token):
    """The expand step: a new nullable column, and code that writes and reads it, rolled out while four clients
    read the products; then the release before it again, which runs on the expanded schema."""
    add_product_note(tree / CATALOG)
    product_id = stack.product(5, staff_token)
    readers = [SteadyLoad(stack, f"/api/{CATALOG}/products", max_seconds=300) for _ in range(4)]
    for reader in readers:
        reader.thread.start()
    try:
        result = deploy_from(tree, stack, CATALOG)
        assert result.returncode == 0, result.stdout + result.stderr
        noted = stack.http.patch(f"{stack.base_url}/api/{CATALOG}/products/{product_id}", json={"note": "expanded"},
                                 headers={"Authorization": f"Bearer {staff_token}"}, timeout=10)  # fmt: skip
        assert noted.status_code == 200 and noted.json()["note"] == "expanded", noted.text
        assert stack.get(f"/api/{CATALOG}/products/{product_id}").json()["note"] == "expanded"
        # The release before, on the schema with the new column, as a user deploys it: `make deploy` with no
        # --project rolls the project Compose names (COMPOSE_PROJECT_NAME, as .env or the shell sets it).
        expanded = container_ids(stack, [CATALOG])[CATALOG]
        environment = {**stack.compose_environment(), "COMPOSE_PROJECT_NAME": stack.project}
        command = ["make", "--no-print-directory", "deploy", f"SERVICE={CATALOG}"]
        back = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
        assert back.returncode == 0, back.stdout + back.stderr
        assert container_ids(stack, [CATALOG])[CATALOG].isdisjoint(expanded)
    finally:
        for reader in readers:
            reader.__exit__()
    for reader in readers:
        assert reader.failed == 0, reader.outcomes
        assert reader.sent > 50, reader.outcomes
    assert "note" not in stack.get(f"/api/{CATALOG}/products/{product_id}").json()
