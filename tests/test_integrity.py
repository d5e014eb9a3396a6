"""Integrity under crashes and races: no order leaks stock, every event is delivered once, and state changes
are atomic however many requests race."""

import json
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import engine
from project import ACCOUNTS, CATALOG, NOTIFICATIONS, ORDERS
from stack import (
    LEAK_BOUND_SECONDS,
    OrderingClients,
    assert_each_client_holds_exactly_one_order,
    leaks,
    place_until_answered,
    timed,
    wait_until,
)

# A stack of its own, shared with the other "outages" modules: it kills and pauses services mid-order.
pytestmark = pytest.mark.own_stack("outages")


def test_orders_killed_while_30_clients_order_leaks_no_stock(stack, make_product, customer):
    product_id = make_product(stock=1000)
    auth = {"Authorization": customer["Authorization"]}
    with OrderingClients(stack, auth, product_id) as clients:
        assert wait_until(lambda: len(clients.made) >= 30, timeout=60)  # orders are flowing: some are in flight
        os.kill(stack.container(ORDERS).attrs["State"]["Pid"], signal.SIGKILL)

    assert_each_client_holds_exactly_one_order(stack, auth, clients.made)
    assert wait_until(lambda: leaks(stack, product_id, 1000) == [], timeout=LEAK_BOUND_SECONDS, interval=2)


def test_a_catalog_paused_during_three_orders_leaks_no_stock(stack, make_product, customer):
    product_id = make_product(stock=30)
    auth = {"Authorization": customer["Authorization"]}

    def first_try(n: int) -> int:
        headers = {**auth, "Idempotency-Key": f"paused-{n}"}
        body = {"product_id": product_id, "quantity": 10}
        return stack.post(f"/api/{ORDERS}/orders", body, headers=headers, timeout=30).status_code

    catalog = stack.container(CATALOG)
    engine.pause(catalog)
    try:
        with ThreadPoolExecutor(max_workers=3) as clients:
            first_tries = list(clients.map(first_try, range(3)))
    finally:
        catalog.unpause()
    assert set(first_tries) <= {503, 504}, first_tries

    deadline = time.monotonic() + 60
    answers = [place_until_answered(stack, auth, product_id, f"paused-{n}", deadline, quantity=10) for n in range(3)]
    assert_each_client_holds_exactly_one_order(stack, auth, answers)
    assert wait_until(lambda: leaks(stack, product_id, 30) == [], timeout=LEAK_BOUND_SECONDS, interval=2)
    # Docker marked the paused catalog unhealthy; the tests after this one start from a healthy stack.
    assert wait_until(lambda: stack.is_healthy(CATALOG), timeout=30)


def feed_of(stack, auth: dict) -> list[dict]:
    response = stack.get(f"/api/{NOTIFICATIONS}/feed?limit=1000", headers=auth)
    return response.json() if response.ok else []


def redeliveries_of(stack, user_id: int) -> list[int]:
    code = (
        "import json; from notifications.models import Notification; "
        f"mine = Notification.objects.filter(user_id={user_id}); "
        "print(json.dumps(list(mine.values_list('redeliveries', flat=True))))"
    )
    result = stack.container(NOTIFICATIONS).exec_run(["django-admin", "shell", "-c", code])
    assert result.exit_code == 0, result.output.decode()
    return json.loads(result.output.decode().strip().splitlines()[-1])


def test_with_two_orders_replicas_each_event_is_delivered_once(stack, make_product, customer):
    product_id = make_product(stock=100)
    auth = {"Authorization": customer["Authorization"]}
    user_id = stack.get(f"/api/{ACCOUNTS}/me", headers=auth).json()["id"]
    stack.scale(ORDERS, 2)
    try:
        for _ in range(20):
            order = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 1}, headers=auth)
            assert order.status_code == 201
        assert wait_until(lambda: len(feed_of(stack, auth)) == 20, timeout=30)
        assert wait_until(stack.outbox_drained, timeout=30)  # so a second deliverer's copies have landed too
        assert redeliveries_of(stack, user_id) == [0] * 20
    finally:
        stack.scale(ORDERS, 1)


def test_ten_concurrent_cancels_send_one_event_and_release_once(stack, make_product, customer):
    product_id = make_product(stock=10)
    auth = {"Authorization": customer["Authorization"]}
    order = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 4}, headers=auth).json()
    with ThreadPoolExecutor(max_workers=10) as clients:
        cancels = list(
            clients.map(lambda _: stack.post(f"/api/{ORDERS}/orders/{order['id']}/cancel", {}, headers=auth), range(10))
        )
    assert [response.status_code for response in cancels] == [200] * 10

    def cancelled_events() -> list[dict]:
        return [item for item in feed_of(stack, auth) if item["type"] == "order.cancelled"]

    assert wait_until(lambda: len(cancelled_events()) == 1 and stack.stock_of(product_id) == 10, timeout=15)
    assert wait_until(stack.outbox_drained, timeout=15)  # so a second release or event has landed too
    assert (len(cancelled_events()), stack.stock_of(product_id)) == (1, 10)


def test_ten_concurrent_creates_of_one_product_name_give_one_201_and_nine_409(stack, staff_token):
    body = {"name": f"race-{uuid.uuid4().hex[:8]}", "price": "1.00", "stock": 1}
    headers = {"Authorization": f"Bearer {staff_token}"}
    with ThreadPoolExecutor(max_workers=10) as clients:
        statuses = list(
            clients.map(lambda _: stack.post(f"/api/{CATALOG}/products", body, headers=headers).status_code, range(10))
        )
    assert sorted(statuses) == [201] + [409] * 9


NESTED = "[" * 100_000 + "]" * 100_000
POST_ROUTES = [
    f"/api/{ACCOUNTS}/register",
    f"/api/{ACCOUNTS}/login",
    f"/api/{ACCOUNTS}/logout",
    f"/api/{CATALOG}/products",
    f"/api/{ORDERS}/orders",
    f"/api/{ORDERS}/orders/{uuid.uuid4()}/cancel",
]


@pytest.mark.parametrize("path", POST_ROUTES)
def test_deeply_nested_json_is_a_400_on_every_post_route(stack, path):
    response = stack.request("POST", path, data=NESTED, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_a_term_during_start_up_migrations_stops_the_replica_at_once(stack):
    container = stack.container(NOTIFICATIONS)
    container.stop(timeout=10)
    container.start()
    try:
        migrating = lambda: any("migrate" in " ".join(process) for process in container.top()["Processes"])  # noqa: E731
        assert wait_until(migrating, timeout=10, interval=0.02)
        _, took = timed(lambda: container.stop(timeout=10))
        container.reload()
        assert took < 3, "stopped by the 10 s kill, not by itself"
        assert container.attrs["State"]["ExitCode"] == 0
    finally:
        container.start()
    assert wait_until(lambda: stack.answers(f"/api/{NOTIFICATIONS}/health/"), timeout=30)
