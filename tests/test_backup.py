"""Backing up a service's database under load and getting it back (`make backup`, `make restore`), on SQLite and on
PostgreSQL: every order placed before the copy is back, those after it are lost and counted, a copy older than
the code migrates forward, one taken by a newer release is refused, and the other services never stop serving."""

import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backups import TAMPERINGS, tamper
from project import ACCOUNTS, CATALOG, NOTIFICATIONS, ORDERS, ROOT
from stack import OrderingClients, SteadyLoad, leaks, wait_until

# A stack of its own, shared with the other "outages" modules: it stops a service and replaces its data.
pytestmark = pytest.mark.own_stack("outages")

BACKUP = [sys.executable, str(ROOT / "scripts" / "backup.py")]


def backup_tool(stack, *arguments: str) -> subprocess.CompletedProcess:
    command = [*BACKUP, *arguments, "--project", stack.project]
    return subprocess.run(command, env=stack.compose_environment(), capture_output=True, text=True, timeout=600)


def migrate(stack, *arguments: str) -> None:
    result = stack.container(ORDERS).exec_run(["django-admin", "migrate", "--no-input", *arguments])
    assert result.exit_code == 0, result.output.decode()


def migration_state(stack) -> dict:
    output = stack.container(ORDERS).exec_run(["django-admin", "migration_state"]).output.decode()
    return json.loads(output.strip().splitlines()[-1])


def place(stack, auth, product_id: int, key: str) -> dict:
    headers = {**auth, "Idempotency-Key": key}
    response = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 1}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def orders_before_the_latest_migration(stack):
    """The orders database one migration behind its code (the last is an index: the code runs on either), so
    that a copy of it is one an older release took; migrated forward again after."""
    applied = migration_state(stack)["applied"]["orders"]
    migrate(stack, "orders", applied[-2])
    yield applied
    migrate(stack, "orders")


def test_a_copy_taken_under_load_restores_every_order_before_it_and_migrates_forward(
    stack, tmp_path, make_product, customer, orders_before_the_latest_migration
):
    latest = orders_before_the_latest_migration[-1]
    auth = {"Authorization": customer["Authorization"]}
    product_id = make_product(1000)
    before = [place(stack, auth, product_id, f"before-{n}") for n in range(3)]
    copy = tmp_path / "copy"
    with OrderingClients(stack, auth, product_id, clients=4, per_client=10) as ordering:
        assert wait_until(lambda: len(ordering.made) >= 2, timeout=30)  # orders are being written
        taken = backup_tool(stack, "backup", ORDERS, "--into", str(copy))
    assert taken.returncode == 0, taken.stdout + taken.stderr
    about = json.loads((copy / f"{ORDERS}.json").read_text())
    assert latest not in about["migrations"]["orders"]
    if about["database"] == "sqlite":  # whole, though orders were being written as it was taken
        with sqlite3.connect(copy / about["file"]) as database:
            assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    migrate(stack, "orders")
    after = [place(stack, auth, product_id, f"after-{n}") for n in range(2)]

    others = [SteadyLoad(stack, f"/api/{service}/health/", max_seconds=120) for service in (ACCOUNTS, CATALOG)]
    others.append(SteadyLoad(stack, f"/api/{NOTIFICATIONS}/health/", max_seconds=120))
    for load in others:
        load.thread.start()
    try:
        restored = backup_tool(stack, "restore", ORDERS, "--from", str(copy))
        # The other services go on answering after it, as they did during it: a few more answers each.
        marks = [load.sent for load in others]
        assert wait_until(lambda: all(load.sent >= mark + 5 for load, mark in zip(others, marks, strict=True)), 10)
    finally:
        for load in others:
            load.__exit__()
    assert restored.returncode == 0, restored.stdout + restored.stderr

    for order in before:
        assert stack.get(f"/api/{ORDERS}/orders/{order['id']}", headers=auth).status_code == 200
    again = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 1},
                       headers={**auth, "Idempotency-Key": "before-0"})  # fmt: skip
    assert again.status_code == 200 and again.json()["id"] == before[0]["id"], again.text
    for order in after:  # the recovery point: what came after the copy is lost
        assert stack.get(f"/api/{ORDERS}/orders/{order['id']}", headers=auth).status_code == 404
    assert latest in migration_state(stack)["applied"]["orders"]  # the older copy, migrated forward
    # The catalog still holds the stock of the orders after the copy: reconciling gives it back.
    assert leaks(stack, product_id, 1000) != []
    reconciled = backup_tool(stack, "reconcile", "--release")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert leaks(stack, product_id, 1000) == []
    for load in others:
        assert load.failed == 0, (load.path, load.outcomes)
        assert load.sent > 20, (load.path, load.outcomes)


def test_a_copy_taken_by_a_newer_release_is_refused_before_anything_stops(stack, tmp_path):
    copy = tmp_path / "copy"
    assert backup_tool(stack, "backup", ORDERS, "--into", str(copy)).returncode == 0
    about_path = copy / f"{ORDERS}.json"
    about = json.loads(about_path.read_text())
    about["migrations"]["orders"].append("9999_from_a_newer_release")
    about_path.write_text(json.dumps(about))
    replicas = {container.id: container.attrs["State"]["StartedAt"] for container in stack.containers(ORDERS)}

    refused = backup_tool(stack, "restore", ORDERS, "--from", str(copy))

    assert refused.returncode != 0
    assert "orders.9999_from_a_newer_release" in refused.stderr and "Nothing was changed" in refused.stderr
    stack.containers(ORDERS)[0].reload()
    assert {c.id: c.attrs["State"]["StartedAt"] for c in stack.containers(ORDERS)} == replicas
    assert wait_until(lambda: stack.answers(f"/api/{ORDERS}/health/"), timeout=5)


@pytest.fixture(scope="module")
def accounts_and_catalog_copies(stack, tmp_path_factory) -> Path:
    """One backup of accounts and of the catalog, for the tests that tamper with copies of it."""
    taken = tmp_path_factory.mktemp("backups") / "taken"
    result = backup_tool(stack, "backup", ACCOUNTS, CATALOG, "--into", str(taken))
    assert result.returncode == 0, result.stdout + result.stderr
    return taken


def test_a_copy_is_its_owners_alone(accounts_and_catalog_copies):
    """Accounts' copy holds every password hash: on main the folder was 0755 and its files 0644."""
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in accounts_and_catalog_copies.iterdir()}
    assert stat.S_IMODE(accounts_and_catalog_copies.stat().st_mode) == 0o700
    assert modes and set(modes.values()) == {0o600}, modes
    about = json.loads((accounts_and_catalog_copies / f"{ACCOUNTS}.json").read_text())
    assert set(about) >= {"service", "database", "migrations", "image", "sha256"}


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_restore_refuses_a_copy_that_is_not_the_catalogs_own_and_the_catalog_serves_on(
    stack, accounts_and_catalog_copies, tmp_path, make_product, how
):
    """On main each of these was restored: another service's database, a path from the metadata, changed bytes."""
    folder = tmp_path / "copy"
    shutil.copytree(accounts_and_catalog_copies, folder)
    said = tamper(folder, CATALOG, ACCOUNTS, how)
    product_id = make_product(stock=7)
    started = {container.id: container.attrs["State"]["StartedAt"] for container in stack.containers(CATALOG)}
    with SteadyLoad(stack, f"/api/{CATALOG}/products/{product_id}", max_seconds=60) as load:
        refused = backup_tool(stack, "restore", CATALOG, "--from", str(folder))
    assert refused.returncode != 0
    assert said in refused.stderr and "nothing was changed" in refused.stderr.lower(), refused.stderr
    assert {c.id: c.attrs["State"]["StartedAt"] for c in stack.containers(CATALOG)} == started
    assert (load.failed, load.sent > 0) == (0, True), load.outcomes
    assert stack.stock_of(product_id) == 7
