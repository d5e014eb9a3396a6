"""A service whose dependency is down answers fast and cleanly, and the data of every service stays whole."""

import time
from collections import Counter

import pytest

from project import CATALOG, NOTIFICATIONS, ORDERS
from stack import seconds, wait_until

# A stack of its own, shared with the other "outages" modules: it stops, pauses, kills and floods services.
pytestmark = pytest.mark.own_stack("outages")


def test_catalog_stopped_makes_ordering_a_fast_503_that_stores_nothing(stack, make_product, customer):
    product_id = make_product(stock=10)
    auth = {"Authorization": customer["Authorization"]}
    stack.compose("stop", CATALOG)
    try:
        started = time.monotonic()
        response = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 2}, headers=auth)
        elapsed = time.monotonic() - started

        assert response.status_code == 503
        assert response.json()["error"]["details"]["dependency"] == CATALOG
        assert elapsed < seconds(2.0)
        assert stack.get(f"/api/{ORDERS}/orders", headers=auth).json() == []
    finally:
        stack.compose("start", CATALOG)

    assert wait_until(lambda: stack.answers(f"/api/{CATALOG}/products/{product_id}"), timeout=15)
    assert stack.stock_of(product_id) == 10


def test_orders_succeed_while_notifications_is_down_and_every_event_arrives_once(stack, make_product, customer):
    product_id = make_product(stock=10)
    auth = {"Authorization": customer["Authorization"]}
    stack.compose("stop", NOTIFICATIONS)
    try:
        orders = [
            stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 1}, headers=auth)
            for _ in range(3)
        ]
        assert [order.status_code for order in orders] == [201, 201, 201]
    finally:
        stack.compose("start", NOTIFICATIONS)

    placed = sorted(order.json()["id"] for order in orders)

    def delivered_order_ids() -> list[str]:
        response = stack.get(f"/api/{NOTIFICATIONS}/feed", headers=auth)
        return sorted(item["data"]["order_id"] for item in response.json()) if response.ok else []

    assert wait_until(lambda: delivered_order_ids() == placed, timeout=30)
    assert wait_until(stack.outbox_drained, timeout=30)  # so any redelivery has landed too
    assert Counter(delivered_order_ids()) == Counter(placed)
