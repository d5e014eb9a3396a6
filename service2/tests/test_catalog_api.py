"""The catalog API: public reads, staff-only writes, and reservations that never take stock below zero."""

import json
import time
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Product, Reservation
from catalog.selectors import stock_report
from servicekit import identity, verification
from servicekit.identity import body_digest
from servicekit.models import AcceptedServiceToken
from servicekit_testing import ADA as CUSTOMER
from servicekit_testing import STAFF, internal_call, signed_by

PREFIX = "/api/service2"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("accounts")]


@pytest.fixture(autouse=True)
def empty_catalog():
    """Each test starts from no products: the demo products of the data migration are not its business."""
    Product.objects.all().delete()


@pytest.fixture
def product():
    return Product.objects.create(name="Mug", price="9.50", stock=10)


def send_json(client, method, path, body, headers=None):
    return getattr(client, method)(PREFIX + path, body, content_type="application/json", headers=headers or {})


def reserve(client, reservation_id, product_id, quantity, caller="service3", **token_options):
    body = {"product_id": product_id, "quantity": quantity}
    return internal_call(
        client, caller, "PUT", f"{PREFIX}/internal/reservations/{reservation_id}", body, **token_options
    )


def release(client, reservation_id):
    return internal_call(client, "service3", "DELETE", f"{PREFIX}/internal/reservations/{reservation_id}")


def test_products_are_listed_for_anyone(client, product):
    response = client.get(PREFIX + "/products")
    assert response.status_code == 200
    assert response.json() == [{"id": product.id, "name": "Mug", "price": "9.50", "stock": 10}]


def test_a_missing_product_is_a_json_404(client):
    response = client.get(PREFIX + "/products/999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_staff_creates_a_product(client):
    response = send_json(client, "post", "/products", {"name": "Mug", "price": "9.50", "stock": 3}, STAFF)
    assert response.status_code == 201
    assert Product.objects.get(name="Mug").stock == 3


@pytest.mark.parametrize("price, shown", [(4.2, "4.20"), ("4.2", "4.20"), ("7", "7.00"), ("0.05", "0.05")])
def test_a_price_is_always_answered_with_two_decimal_places(client, price, shown):
    response = send_json(client, "post", "/products", {"name": "Mug", "price": price, "stock": 3}, STAFF)
    assert response.status_code == 201
    assert response.json()["price"] == shown
    assert client.get(f"{PREFIX}/products/{response.json()['id']}").json()["price"] == shown


def test_creating_without_a_token_is_401(client):
    response = send_json(client, "post", "/products", {"name": "Mug", "price": "9.50", "stock": 3})
    assert response.status_code == 401
    assert not Product.objects.exists()


def test_creating_as_a_customer_is_403(client):
    response = send_json(client, "post", "/products", {"name": "Mug", "price": "9.50", "stock": 3}, CUSTOMER)
    assert response.status_code == 403
    assert not Product.objects.exists()


def test_a_duplicate_name_is_409(client, product):
    response = send_json(client, "post", "/products", {"name": "Mug", "price": "1", "stock": 1}, STAFF)
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"price": "9.50", "stock": 3},
        {"name": "Mug", "price": "-1", "stock": 3},
        {"name": "Mug", "price": "abc", "stock": 3},
        {"name": "Mug", "price": "9.50", "stock": -1},
        {"name": "Mug", "price": "9.50", "stock": "many"},
        {"name": "", "price": "9.50", "stock": 3},
    ],
)
def test_invalid_products_are_400_and_write_nothing(client, body):
    response = send_json(client, "post", "/products", body, STAFF)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not Product.objects.exists()


def test_staff_updates_a_product(client, product):
    response = send_json(client, "patch", f"/products/{product.id}", {"stock": 42}, STAFF)
    assert response.status_code == 200
    product.refresh_from_db()
    assert (product.stock, product.name) == (42, "Mug")


def test_a_reservation_takes_stock_once_per_id(client, product):
    reservation_id = uuid.uuid4()
    first = reserve(client, reservation_id, product.id, 3)
    assert first.status_code == 201
    assert first.json()["product_name"] == "Mug"
    assert reserve(client, reservation_id, product.id, 3).status_code == 200
    product.refresh_from_db()
    assert product.stock == 7


def test_a_reservation_beyond_stock_is_409_and_takes_nothing(client, product):
    response = reserve(client, uuid.uuid4(), product.id, 11)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_stock"
    product.refresh_from_db()
    assert product.stock == 10
    assert not Reservation.objects.exists()


def test_reusing_a_reservation_id_for_another_quantity_is_409(client, product):
    reservation_id = uuid.uuid4()
    reserve(client, reservation_id, product.id, 3)
    assert reserve(client, reservation_id, product.id, 4).status_code == 409


def test_a_release_gives_the_stock_back_once(client, product):
    reservation_id = uuid.uuid4()
    reserve(client, reservation_id, product.id, 3)
    assert release(client, reservation_id).status_code == 204
    assert release(client, reservation_id).status_code == 204
    product.refresh_from_db()
    assert product.stock == 10


def test_a_release_before_its_reservation_blocks_it(client, product):
    reservation_id = uuid.uuid4()
    release(client, reservation_id)
    response = reserve(client, reservation_id, product.id, 3)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "reservation_released"
    product.refresh_from_db()
    assert product.stock == 10


def test_reserving_an_unknown_product_is_404(client):
    assert reserve(client, uuid.uuid4(), 999, 1).status_code == 404


def reserve_as(client, headers):
    body = {"product_id": 1, "quantity": 1}
    return send_json(client, "put", f"/internal/reservations/{uuid.uuid4()}", body, headers)


def reserve_as_signed(client, caller="service3", **token_options):
    return reserve(client, uuid.uuid4(), 1, 1, caller, **token_options)


def test_an_internal_route_without_a_service_token_is_401(client):
    response = reserve_as(client, {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "service_token_required"


@pytest.mark.parametrize(
    "token_options",
    [
        {"signing_key": Ed25519PrivateKey.generate()},  # forged: not signed with service3's published key
        {"audience": "service4"},  # made for another service, replayed here
        {"lifetime": -60},  # expired
    ],
    ids=["forged", "for-another-service", "expired"],
)
def test_an_internal_route_refuses_a_token_that_is_not_valid_here(client, token_options):
    response = reserve_as_signed(client, **token_options)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_service_token"


@pytest.mark.parametrize("gateway_serves", ["the new key", "a key that did not sign"])
def test_a_caller_that_made_a_new_key_is_trusted_once_the_gateway_serves_it(client, product, monkeypatch,
                                                                            gateway_serves):  # fmt: skip
    """A caller whose data volume was lost and restored signs with a key made anew. On main it was refused for a
    minute, until the kept key expired; now the key is fetched again at once (at most every few seconds)."""
    new_key = Ed25519PrivateKey.generate()
    served = new_key if gateway_serves == "the new key" else Ed25519PrivateKey.generate()
    fetched = []

    def gateway_serves_key_of(service: str) -> str:
        fetched.append(service)
        return identity.public_key_pem(served)

    monkeypatch.setattr(verification, "PUBLIC_KEY_REFRESH_SECONDS", 0)  # the kept key was fetched long enough ago
    monkeypatch.setattr(verification, "fetch_public_key", gateway_serves_key_of)
    response = reserve(client, uuid.uuid4(), product.id, 1, signing_key=new_key)  # the kept key is another one
    assert fetched == ["service3"]
    assert response.status_code == (201 if gateway_serves == "the new key" else 401), response.json()


def test_a_signature_the_kept_key_does_not_verify_fetches_it_again_at_most_every_few_seconds(client, monkeypatch):
    fetched = []
    monkeypatch.setattr(verification, "fetch_public_key", lambda service: fetched.append(service))
    for _ in range(3):
        assert reserve_as_signed(client, signing_key=Ed25519PrivateKey.generate()).status_code == 401
    assert fetched == []  # the kept key is fresh: a forger cannot make this service ask the gateway


def test_a_service_token_is_accepted_once(client, product):
    path = f"{PREFIX}/internal/reservations/{uuid.uuid4()}"
    body = json.dumps({"product_id": product.id, "quantity": 1})
    headers = signed_by("service3", "PUT", path, body)
    first = client.put(path, body, content_type="application/json", headers=headers)
    replayed = client.put(path, body, content_type="application/json", headers=headers)
    assert (first.status_code, replayed.status_code) == (201, 401)
    assert "used already" in replayed.json()["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_a_reservation_and_its_tokens_single_use_record_are_one_write_transaction(client, product):
    """One taking of the write lock and one commit per call, not one for the token and another for the stock."""
    with CaptureQueriesContext(connection) as queries:
        assert reserve(client, uuid.uuid4(), product.id, 1).status_code == 201
    statements = [query["sql"].split()[0] for query in queries]
    assert statements.count("BEGIN") == 1, statements
    begun = statements.index("BEGIN")
    assert {"INSERT", "UPDATE"} <= set(statements[begun:]), statements  # the token's id, the reservation, the stock
    assert "INSERT" not in statements[:begun], statements


def test_a_refused_reservation_takes_nothing_and_spends_its_token(client, product):
    path = f"{PREFIX}/internal/reservations/{uuid.uuid4()}"
    body = json.dumps({"product_id": product.id, "quantity": 11})
    headers = signed_by("service3", "PUT", path, body)
    refused = client.put(path, body, content_type="application/json", headers=headers)
    product.stock = 20  # the stock the replay would now find
    product.save()
    replayed = client.put(path, body, content_type="application/json", headers=headers)
    assert (refused.status_code, replayed.status_code) == (409, 401)
    assert not Reservation.objects.exists()
    assert AcceptedServiceToken.objects.count() == 1


@pytest.mark.parametrize(
    "claims",
    [{"htm": "DELETE"}, {"htu": f"{PREFIX}/internal/reservations/{uuid.uuid4()}"}, {"bdh": body_digest(b"{}")}],
    ids=["another-method", "another-path", "another-body"],
)
def test_a_service_token_made_for_another_request_is_refused(client, product, claims):
    response = reserve(client, uuid.uuid4(), product.id, 1, **claims)
    assert response.status_code == 401
    assert "another request" in response.json()["error"]["message"]
    assert Reservation.objects.count() == 0


def test_a_service_token_that_lives_longer_than_a_minute_is_refused_whatever_its_issuer_set(client, product):
    now = int(time.time())
    response = reserve(client, uuid.uuid4(), product.id, 1, iat=now, exp=now + 10 * 365 * 86400)
    assert response.status_code == 401
    assert "at most 60 s" in response.json()["error"]["message"]


def test_accepted_token_ids_are_forgotten_once_expired(client, product, monkeypatch):
    monkeypatch.setattr(verification, "PRUNE_EVERY", 1)
    AcceptedServiceToken.objects.create(jti="expired", expires_at=timezone.now() - timedelta(seconds=1))
    assert reserve(client, uuid.uuid4(), product.id, 1).status_code == 201
    assert not AcceptedServiceToken.objects.filter(jti="expired").exists()


def test_an_internal_route_refuses_a_service_the_policy_does_not_name(client):
    response = reserve_as_signed(client, "service4")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "caller_not_allowed"
    assert Reservation.objects.count() == 0


def test_a_malformed_service_token_is_401(client):
    response = reserve_as(client, {"X-Service-Token": "not-a-token"})
    assert response.status_code == 401


def test_renaming_to_a_taken_name_is_409_and_changes_nothing(client, product):
    other = Product.objects.create(name="Cup", price="3.00", stock=5)
    response = send_json(client, "patch", f"/products/{other.id}", {"name": "Mug", "stock": 1}, STAFF)
    assert response.status_code == 409
    other.refresh_from_db()
    assert (other.name, other.stock) == ("Cup", 5)


def test_the_stock_report_adds_what_reservations_hold_to_the_stock(client, product):
    held, released = uuid.uuid4(), uuid.uuid4()
    reserve(client, held, product.id, 3)
    reserve(client, released, product.id, 2)
    release(client, released)
    report = stock_report()
    assert report["products"][str(product.id)] == {"stock": 7, "held": 3}
    assert report["held"] == {str(held): {"product_id": product.id, "quantity": 3}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Mug\x00", "price": "1.00", "stock": 1}, "name"),
        ({"name": "Mug", "price": "1.00", "stock": True}, "stock"),
        ({"name": "Mug", "price": "1.00", "stock": "1"}, "stock"),
        ({"name": 5, "price": "1.00", "stock": 1}, "name"),
        ({"name": "Mug", "price": "", "stock": 1}, "price"),
        ({"name": "Mug", "price": "1e3", "stock": 1}, "price"),
    ],
    ids=["nul-in-name", "stock-true", "stock-string", "name-number", "price-empty", "price-exponent"],
)
def test_a_product_field_of_the_wrong_kind_is_400_naming_it_and_nothing_is_written(client, body, field):
    response = send_json(client, "post", "/products", body, STAFF)
    assert response.status_code == 400
    assert [detail["field"].rsplit(".", 1)[-1] for detail in response.json()["error"]["details"]] == [field]
    assert not Product.objects.exists()


@pytest.mark.parametrize("changes", [[None, None], {"name": "Cup\x00"}, {"stock": "2"}], ids=["list", "nul", "string"])
def test_a_change_that_is_not_an_object_of_valid_fields_is_400_and_changes_nothing(client, product, changes):
    response = send_json(client, "patch", f"/products/{product.id}", changes, STAFF)
    assert response.status_code == 400
    product.refresh_from_db()
    assert (product.name, product.stock) == ("Mug", 10)


@pytest.mark.parametrize("product_id", [2**63, 2**64, 0])
def test_a_product_id_no_column_holds_is_400_naming_it(client, product_id):
    response = client.get(f"{PREFIX}/products/{product_id}")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"].endswith("product_id")
