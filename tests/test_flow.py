"""The whole flow a user drives through the gateway: register, log in, browse, order, be notified."""

import uuid

from project import ACCOUNTS, CATALOG, NOTIFICATIONS, ORDERS, environment_of
from stack import wait_until


def test_register_login_order_and_the_notification_appears(stack, make_product):
    product_id = make_product(stock=5)
    username, password = f"flow-{uuid.uuid4().hex[:8]}", "correct horse battery"

    assert stack.post(f"/api/{ACCOUNTS}/register", {"username": username, "password": password}).status_code == 201
    auth = {"Authorization": f"Bearer {stack.login(username, password)}"}
    assert product_id in [product["id"] for product in stack.get(f"/api/{CATALOG}/products").json()]

    order = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 2}, headers=auth)
    assert order.status_code == 201
    assert stack.stock_of(product_id) == 3

    def notified() -> bool:
        feed = stack.get(f"/api/{NOTIFICATIONS}/feed", headers=auth).json()
        return [item["data"]["order_id"] for item in feed] == [order.json()["id"]]

    assert wait_until(notified, timeout=10)


def test_cancelling_gives_the_stock_back(stack, make_product, customer):
    product_id = make_product(stock=5)
    auth = {"Authorization": customer["Authorization"]}
    order_id = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 5}, headers=auth).json()["id"]
    assert stack.stock_of(product_id) == 0

    response = stack.post(f"/api/{ORDERS}/orders/{order_id}/cancel", None, headers=auth)
    assert response.json()["status"] == "cancelled"
    assert stack.stock_of(product_id) == 5


def test_internal_endpoints_are_not_reachable_from_outside(stack, customer):
    response = stack.get(f"/api/{ACCOUNTS}/internal/introspect", headers={"Authorization": customer["Authorization"]})
    assert response.status_code == 404
    assert "X-Served-By" not in response.headers


def test_each_service_serves_its_openapi_schema(stack, service):
    schema = stack.get(f"/api/{service}/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert schema["paths"]  # not empty, so the next line says something
    assert [path for path in schema["paths"] if not path.startswith(f"/api/{service}/")] == []


def introspection_cache_seconds(stack, service: str) -> float:
    """INTROSPECTION_CACHE_SECONDS as service's containers run with it."""
    return float(environment_of(stack.container(service))["INTROSPECTION_CACHE_SECONDS"])


def test_a_logout_is_refused_at_accounts_at_once_and_by_every_other_service_within_the_introspection_cache_time(
    stack, customer
):
    """Each worker of the other services keeps accounts' answer about a live token that long (servicekit.auth):
    the one-hop read's speed, and the bound docs/security.md states on a logout."""
    auth = {"Authorization": customer["Authorization"]}
    elsewhere = [f"/api/{NOTIFICATIONS}/feed", f"/api/{ORDERS}/orders"]
    for _ in range(4):  # every worker (2 per service by default) asks, and keeps the answer
        assert [stack.get(path, headers=auth).status_code for path in elsewhere] == [200, 200]
    assert stack.post(f"/api/{ACCOUNTS}/logout", None, headers=auth).status_code == 204
    assert stack.get(f"/api/{ACCOUNTS}/me", headers=auth).status_code == 401
    bound = max(introspection_cache_seconds(stack, service) for service in (NOTIFICATIONS, ORDERS))

    def refused_everywhere() -> bool:
        return all(stack.get(path, headers=auth).status_code == 401 for path in elsewhere for _ in range(4))

    assert wait_until(refused_everywhere, timeout=bound + 2, interval=0.2)
