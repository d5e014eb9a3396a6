"""Orders under concurrency and retries: stock is never oversold, a retried order is made once."""

from concurrent.futures import ThreadPoolExecutor

from project import ORDERS


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

    # One makes the order; the others get it (200), or hear it is still being placed (409, send it again).
    statuses = [response.status_code for response in responses]
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409}, statuses
    made = [response for response in responses if response.status_code in (200, 201)]
    assert len({response.json()["id"] for response in made}) == 1
    in_progress = [response.json()["error"]["code"] for response in responses if response.status_code == 409]
    assert set(in_progress) <= {"order_in_progress"}
    assert stack.stock_of(product_id) == 9
    assert len(stack.get(f"/api/{ORDERS}/orders", headers={"Authorization": customer["Authorization"]}).json()) == 1
