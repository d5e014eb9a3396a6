"""Data lives in the services' volumes: `docker compose down` and `up` lose none of it."""

import pytest

from project import ORDERS

# A stack of its own, shared with the other "rollouts" modules: it takes the stack down and up.
pytestmark = pytest.mark.own_stack("rollouts")


def test_data_survives_down_and_up(stack, make_product, customer):
    product_id = make_product(stock=4)
    auth = {"Authorization": customer["Authorization"]}
    order = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 1}, headers=auth).json()

    stack.take_down("--timeout", "10")
    stack.up()

    # The token (accounts), the stock (catalog) and the order (orders) all come back.
    assert stack.get(f"/api/{ORDERS}/orders/{order['id']}", headers=auth).json()["id"] == order["id"]
    assert stack.stock_of(product_id) == 3
