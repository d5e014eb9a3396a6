"""Orders under concurrency and retries: stock is never oversold, a retried order is made once."""

from concurrent.futures import ThreadPoolExecutor

from stack import ORDERS


def test_fifty_concurrent_orders_for_ten_in_stock_sell_exactly_ten(stack, make_product, customer):
    product_id = make_product(stock=10)
    auth = {"Authorization": customer["Authorization"]}

    def order(_):
        return stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 1}, headers=auth, timeout=30)

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = [response.status_code for response in pool.map(order, range(50))]

    assert statuses.count(201) == 10
    assert statuses.count(409) == 40
    assert stack.stock_of(product_id) == 0
    assert len(stack.get(f"/api/{ORDERS}/orders", headers=auth).json()) == 10


def test_the_same_idempotency_key_twice_makes_one_order(stack, make_product, customer):
    product_id = make_product(stock=10)
    headers = {"Authorization": customer["Authorization"], "Idempotency-Key": "checkout-42"}
    body = {"product_id": product_id, "quantity": 3}

    first = stack.post(f"/api/{ORDERS}/orders", body, headers=headers)
    second = stack.post(f"/api/{ORDERS}/orders", body, headers=headers)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert stack.stock_of(product_id) == 7
    assert len(stack.get(f"/api/{ORDERS}/orders", headers={"Authorization": customer["Authorization"]}).json()) == 1


def test_the_same_idempotency_key_sent_concurrently_makes_one_order(stack, make_product, customer):
    product_id = make_product(stock=10)
    headers = {"Authorization": customer["Authorization"], "Idempotency-Key": "double-click"}

    def order(_):
        return stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 1}, headers=headers)

    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(order, range(5)))

    assert {response.status_code for response in responses} <= {200, 201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert stack.stock_of(product_id) == 9
