"""Bad input on every write endpoint: the right 4xx, the one error shape, and nothing written."""

import uuid

import pytest

from project import ACCOUNTS, CATALOG, ORDERS

ONE_MEGABYTE_AND_MORE = b'{"x": "' + b"x" * (1024 * 1024 + 1) + b'"}'


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


@pytest.fixture(scope="module")
def write_endpoints(stack, staff_token):
    """Every public write endpoint: (method, path, headers, a valid body). One customer, product and order for the
    module (a customer costs two password hashes): every request made with them here is refused, changing nothing."""
    product_id = stack.product(5, staff_token)
    auth = {"Authorization": stack.customer()["Authorization"]}
    order = stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 1}, headers=auth).json()
    staff = {"Authorization": f"Bearer {staff_token}"}
    return {
        "register": ("POST", f"/api/{ACCOUNTS}/register", {}, {"username": "u", "password": "correct horse"}),
        "login": ("POST", f"/api/{ACCOUNTS}/login", {}, {"username": "u", "password": "correct horse"}),
        "product create": ("POST", f"/api/{CATALOG}/products", staff, {"name": "n", "price": "1.00", "stock": 1}),
        "product update": ("PATCH", f"/api/{CATALOG}/products/{product_id}", staff, {"stock": 1}),
        "order": ("POST", f"/api/{ORDERS}/orders", auth, {"product_id": product_id, "quantity": 1}),
        "cancel": ("POST", f"/api/{ORDERS}/orders/{order['id']}/cancel", auth, {}),
    }


ENDPOINTS = ["register", "login", "product create", "product update", "order", "cancel"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_malformed_json_is_400(stack, write_endpoints, endpoint):
    method, path, headers, _ = write_endpoints[endpoint]
    headers = {**headers, "Content-Type": "application/json"}
    error = assert_error(stack.request(method, path, data=b'{"oops": ', headers=headers), 400)
    assert error["code"] == "malformed_json"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_that_is_not_json_is_415(stack, write_endpoints, endpoint):
    method, path, headers, _ = write_endpoints[endpoint]
    headers = {**headers, "Content-Type": "text/plain"}
    assert_error(stack.request(method, path, data=b"hello", headers=headers), 415)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_oversized_body_is_413(stack, write_endpoints, endpoint):
    method, path, headers, _ = write_endpoints[endpoint]
    headers = {**headers, "Content-Type": "application/json"}
    assert_error(stack.request(method, path, data=ONE_MEGABYTE_AND_MORE, headers=headers), 413)


@pytest.mark.parametrize("endpoint", ["register", "login", "product create", "product update", "order"])
def test_wrong_types_are_400_naming_the_field(stack, write_endpoints, endpoint):
    method, path, headers, valid = write_endpoints[endpoint]
    field = next(iter(valid))
    body = {**valid, field: {"not": "a scalar"}}
    error = assert_error(stack.request(method, path, json=body, headers=headers), 400)
    assert any(detail["field"].endswith(field) for detail in error["details"])


@pytest.mark.parametrize(
    ("endpoint", "field", "value"),
    [
        ("login", "username", "ada\x00"),
        ("register", "username", "ada\x00"),
        ("product create", "name", "mug\x00"),
        ("order", "product_id", 2**63),
        ("order", "quantity", True),
        ("order", "quantity", "1"),
        ("product update", "stock", "1"),
    ],
    ids=["nul-login", "nul-register", "nul-product", "id-2^63", "quantity-true", "quantity-string", "stock-string"],
)
def test_what_the_schema_does_not_allow_is_400_naming_the_field_on_either_database(
    stack, write_endpoints, endpoint, field, value
):
    method, path, headers, valid = write_endpoints[endpoint]
    error = assert_error(stack.request(method, path, json={**valid, field: value}, headers=headers), 400)
    assert [detail["field"].rsplit(".", 1)[-1] for detail in error["details"]] == [field]


def test_a_body_that_is_not_a_json_object_is_400(stack, write_endpoints):
    method, path, headers, _ = write_endpoints["product update"]
    error = assert_error(stack.request(method, path, json=[None, None], headers=headers), 400)
    assert error["code"] == "validation_error"


@pytest.mark.parametrize("endpoint", ["register", "login", "product create", "order"])
def test_missing_fields_are_400(stack, write_endpoints, endpoint):
    method, path, headers, _ = write_endpoints[endpoint]
    error = assert_error(stack.request(method, path, json={}, headers=headers), 400)
    assert error["code"] == "validation_error"


def test_nothing_is_written_by_a_rejected_registration(stack):
    username = f"rejected-{uuid.uuid4().hex[:8]}"
    assert_error(stack.post(f"/api/{ACCOUNTS}/register", {"username": username, "password": "short"}), 400)
    retry = stack.post(f"/api/{ACCOUNTS}/register", {"username": username, "password": "long enough now"})
    assert retry.status_code == 201


def test_nothing_is_written_by_a_rejected_product(stack, staff_token):
    staff = {"Authorization": f"Bearer {staff_token}"}
    before = stack.get(f"/api/{CATALOG}/products").json()
    body = {"name": f"rejected-{uuid.uuid4().hex[:8]}", "price": "-5", "stock": 1}
    assert_error(stack.post(f"/api/{CATALOG}/products", body, headers=staff), 400)
    assert stack.get(f"/api/{CATALOG}/products").json() == before


def test_nothing_is_written_by_a_rejected_order(stack, make_product, customer):
    product_id = make_product(stock=5)
    auth = {"Authorization": customer["Authorization"]}
    assert_error(stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 0}, headers=auth), 400)
    assert_error(stack.post(f"/api/{ORDERS}/orders", {"product_id": product_id, "quantity": 6}, headers=auth), 409)
    assert stack.get(f"/api/{ORDERS}/orders", headers=auth).json() == []
    assert stack.stock_of(product_id) == 5


def test_writes_without_a_token_are_401_and_with_the_wrong_role_403(stack, customer):
    body = {"name": "n", "price": "1.00", "stock": 1}
    assert_error(stack.post(f"/api/{CATALOG}/products", body), 401)
    as_customer = {"Authorization": customer["Authorization"]}
    assert_error(stack.post(f"/api/{CATALOG}/products", body, headers=as_customer), 403)
    assert_error(stack.post(f"/api/{ORDERS}/orders", {"product_id": 1, "quantity": 1}), 401)


def test_a_wrong_method_is_405(stack):
    assert_error(stack.request("DELETE", f"/api/{CATALOG}/products"), 405)
