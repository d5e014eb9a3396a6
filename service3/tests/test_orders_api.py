"""The orders API: reserve then store, idempotent by key, never a half-made order, events through the outbox."""

import ast
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import responses
from django.conf import settings
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import mule, outbox, services
from orders.models import Order, OutboxMessage
from servicekit.context import request_id_var
from servicekit_testing import ADA, GRACE

PREFIX = "/api/service3"
pytestmark = pytest.mark.django_db


def service_url(service: str, path: str) -> str:
    return f"{settings.GATEWAY_INTERNAL_URL}/api/{service}{path}"


def starting_with(url: str) -> re.Pattern:
    """A URL matcher for responses; the internal URL's scheme, http+unix, has a regex metacharacter."""
    return re.compile(re.escape(url) + ".*")


class FakeCatalog:
    """The catalog's reservation endpoints, with stock for product 1 only."""

    def __init__(self, stock: int):
        self.stock = stock
        self.reservations: dict[str, int] = {}
        self.down = False

    def reserve(self, request):
        if self.down:
            return 503, {}, json.dumps({"error": {"code": "service_unavailable"}})
        reservation_id = request.url.rstrip("/").rsplit("/", 1)[1]
        body = json.loads(request.body)
        if body["product_id"] != 1:
            return 404, {}, json.dumps({"error": {"code": "product_not_found", "message": "no"}})
        if body["quantity"] > self.stock:
            return 409, {}, json.dumps({"error": {"code": "insufficient_stock", "message": "Not enough stock"}})
        self.stock -= body["quantity"]
        self.reservations[reservation_id] = body["quantity"]
        answer = {"id": reservation_id, "product_id": 1, "quantity": body["quantity"], "product_name": "Mug"}
        return 201, {}, json.dumps(answer)

    def release(self, request):
        if self.down:
            return 503, {}, ""
        reservation_id = request.url.rstrip("/").rsplit("/", 1)[1]
        self.stock += self.reservations.pop(reservation_id, 0)
        return 204, {}, ""


@pytest.fixture
def catalog():
    return FakeCatalog(stock=10)


@pytest.fixture(autouse=True)
def dependencies(accounts, catalog):
    """Accounts (servicekit's stub) and the fake catalog, on one RequestsMock."""
    reservations = service_url("service2", "/internal/reservations/")
    accounts.add_callback(responses.PUT, starting_with(reservations), catalog.reserve)
    accounts.add_callback(responses.DELETE, starting_with(reservations), catalog.release)
    return accounts


def place(client, body, headers=ADA, key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(PREFIX + "/orders", body, content_type="application/json", headers={**headers, **extra})


def test_an_order_reserves_stock_and_queues_its_event(client, catalog):
    response = place(client, {"product_id": 1, "quantity": 3})
    assert response.status_code == 201
    assert catalog.stock == 7
    order = Order.objects.get()
    assert str(order.id) == response.json()["id"]
    (message,) = OutboxMessage.objects.all()
    assert message.body["type"] == "order.placed"
    assert message.body["data"]["order_id"] == str(order.id)
    assert message.body["data"]["product_name"] == order.product_name == "Mug"


def test_the_same_idempotency_key_makes_one_order(client, catalog):
    first = place(client, {"product_id": 1, "quantity": 2}, key="k-1")
    second = place(client, {"product_id": 1, "quantity": 2}, key="k-1")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Order.objects.count() == 1
    assert catalog.stock == 8


def test_a_key_reused_for_another_order_is_409(client):
    place(client, {"product_id": 1, "quantity": 2}, key="k-1")
    response = place(client, {"product_id": 1, "quantity": 5}, key="k-1")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_keys_belong_to_their_user(client):
    place(client, {"product_id": 1, "quantity": 1}, ADA, key="same")
    response = place(client, {"product_id": 1, "quantity": 1}, GRACE, key="same")
    assert response.status_code == 201
    assert Order.objects.count() == 2


def test_not_enough_stock_is_409_and_stores_nothing(client):
    response = place(client, {"product_id": 1, "quantity": 11})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_stock"
    assert not Order.objects.exists() and not OutboxMessage.objects.exists()


def test_an_unknown_product_is_400_naming_the_field(client):
    response = place(client, {"product_id": 99, "quantity": 1})
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "body.order.product_id"


def releases_queued() -> list[str]:
    return [message.path for message in OutboxMessage.objects.filter(method="DELETE")]


def test_catalog_down_is_503_naming_it_keeps_no_order_and_queues_a_release(client, catalog):
    """A 503 may come after the reservation was made: its release is queued, and blocks a late one."""
    catalog.down = True
    response = place(client, {"product_id": 1, "quantity": 1})
    assert response.status_code == 503
    assert response.json()["error"]["details"]["dependency"] == "service2"
    assert not Order.objects.exists()
    assert len(releases_queued()) == 1


def test_a_refusal_by_the_catalog_keeps_no_order_and_queues_nothing(client, catalog):
    assert place(client, {"product_id": 1, "quantity": 11}).status_code == 409
    assert not Order.objects.exists() and not OutboxMessage.objects.exists()


def crash_after_reserving(client, monkeypatch, *, quantity: int) -> None:
    """An order placed by a process that dies between the catalog's reservation and the order's commit."""
    with monkeypatch.context() as crashing:
        crashing.setattr(outbox.OutboxMessage.objects, "create", lambda **kwargs: (_ for _ in ()).throw(SystemExit))
        with pytest.raises(SystemExit):
            place(client, {"product_id": 1, "quantity": quantity})


def test_a_crash_after_reserving_is_swept_and_the_stock_released(client, catalog, monkeypatch, settings):
    crash_after_reserving(client, monkeypatch, quantity=4)
    assert catalog.stock == 6
    assert Order.objects.get().status == Order.Status.PENDING

    assert services.order_sweep_abandoned() == 0  # a live request may still own it
    settings.ORDER_PENDING_SECONDS = 0
    assert services.order_sweep_abandoned() == 1
    assert services.order_sweep_abandoned() == 0
    outbox.deliver_due()
    assert catalog.stock == 10
    assert not Order.objects.exists()


def test_one_pass_of_the_mule_gives_up_an_abandoned_order_and_delivers_its_release(client, catalog, monkeypatch):
    crash_after_reserving(client, monkeypatch, quantity=4)
    monkeypatch.setattr(settings, "ORDER_PENDING_SECONDS", 0)
    assert mule.work_one_pass() == 1  # the release the sweep queued, delivered in the same pass
    assert (catalog.stock, Order.objects.exists()) == (10, False)


def test_the_outbox_imports_nothing_of_the_order_services_that_queue_into_it():
    """No import cycle, not even one deferred into a function: orders.outbox is the messages alone, and the mule
    (orders/mule.py) is where its two jobs meet."""
    tree = ast.parse(Path(outbox.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "orders.models" in imported  # the walk sees the module's imports
    assert "orders.services" not in imported


@pytest.fixture
def cancel(client, django_capture_on_commit_callbacks):
    def cancel(order_id):
        with django_capture_on_commit_callbacks(execute=True):  # what runs once the cancellation is committed
            return client.post(f"{PREFIX}/orders/{order_id}/cancel", content_type="application/json", headers=ADA)

    return cancel


def test_cancelling_gives_the_stock_back_before_it_answers(client, catalog, cancel):
    order_id = place(client, {"product_id": 1, "quantity": 4}).json()["id"]
    assert cancel(order_id).json()["status"] == "cancelled"
    assert catalog.stock == 10
    assert OutboxMessage.objects.get(method="DELETE").delivered_at is not None


def test_cancelling_queues_one_event_and_one_release_however_often_it_is_sent(client, catalog, cancel):
    order_id = place(client, {"product_id": 1, "quantity": 4}).json()["id"]
    responses_to_cancel = [cancel(order_id) for _ in range(3)]
    assert [r.json()["status"] for r in responses_to_cancel] == ["cancelled"] * 3
    assert [m.body["type"] for m in OutboxMessage.objects.filter(method="PUT")] == ["order.placed", "order.cancelled"]
    assert releases_queued() == [f"/internal/reservations/{order_id}"]
    assert catalog.stock == 10


def test_a_release_the_catalog_cannot_take_now_waits_in_the_outbox(client, catalog, cancel):
    order_id = place(client, {"product_id": 1, "quantity": 4}).json()["id"]
    catalog.down = True
    cancel(order_id)
    assert OutboxMessage.objects.get(method="DELETE").delivered_at is None
    catalog.down = False
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    outbox.deliver_due()
    assert catalog.stock == 10


def test_users_see_only_their_own_orders(client):
    order_id = place(client, {"product_id": 1, "quantity": 1}).json()["id"]
    assert len(client.get(PREFIX + "/orders", headers=ADA).json()) == 1
    assert client.get(PREFIX + "/orders", headers=GRACE).json() == []
    assert client.get(f"{PREFIX}/orders/{order_id}", headers=GRACE).status_code == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"product_id": 1}, {"product_id": "one", "quantity": 1}, {"product_id": 1, "quantity": 0}, [1, 2]],
)
def test_invalid_orders_are_400_and_store_nothing(client, catalog, body):
    response = place(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not Order.objects.exists()
    assert catalog.stock == 10


def test_an_invalid_idempotency_key_is_400(client):
    response = place(client, {"product_id": 1, "quantity": 1}, key="has spaces in it")
    assert response.status_code == 400
    assert not Order.objects.exists()


def test_ordering_without_a_token_is_401(client):
    assert place(client, {"product_id": 1, "quantity": 1}, headers={}).status_code == 401


def generic_message() -> OutboxMessage:
    """A call the outbox knows nothing about but where it goes: how any message but an event is delivered."""
    return outbox.outbox_enqueue(service="service1", method="PUT", path=f"/internal/things/{uuid.uuid4()}", body={})


class TestOutboxDelivery:
    @pytest.fixture
    def message(self):
        return generic_message()

    def test_a_delivered_message_is_marked_and_not_sent_again(self, dependencies, message):
        url = service_url("service1", message.path)
        dependencies.add(responses.PUT, url, status=201)
        assert outbox.deliver_due() == 1
        assert outbox.deliver_due() == 0
        message.refresh_from_db()
        assert message.delivered_at is not None
        assert len([call for call in dependencies.calls if call.request.url == url]) == 1

    def test_an_unreachable_receiver_is_retried_later_with_backoff(self, dependencies, message):
        dependencies.add(responses.PUT, service_url("service1", message.path), body=requests.ConnectionError())
        assert outbox.deliver_due() == 0
        message.refresh_from_db()
        assert message.delivered_at is None
        assert message.attempts == 1
        assert message.next_attempt_at > message.created_at

    def test_a_delivery_makes_the_receiver_backlog_due_at_once(self, dependencies, message):
        waiting = generic_message()
        OutboxMessage.objects.filter(id=waiting.id).update(next_attempt_at=waiting.created_at + timedelta(hours=1))
        dependencies.add(responses.PUT, starting_with(service_url("service1", "/")), status=201)
        assert outbox.deliver_due() == 1
        assert outbox.deliver_due() == 1
        assert not OutboxMessage.objects.filter(delivered_at__isnull=True).exists()

    def test_a_delivery_with_no_backlog_writes_only_its_own_outcome(self, dependencies, message):
        """On SQLite an UPDATE takes the write lock even when it matches nothing, and orders being placed wait on
        it: a pass that delivers one message writes twice (its lease, its outcome), not a third time."""
        dependencies.add(responses.PUT, service_url("service1", message.path), status=201)
        with CaptureQueriesContext(connection) as queries:
            assert outbox.deliver_due() == 1
        writes = [query["sql"] for query in queries if query["sql"].startswith(("UPDATE", "INSERT", "DELETE"))]
        assert len(writes) == 2, writes

    def test_the_mule_follows_a_full_batch_at_once_and_waits_to_gather_after_a_partial_one(self, settings):
        settings.OUTBOX_POLL_SECONDS, settings.OUTBOX_GATHER_SECONDS = 0.5, 0.05
        assert [mule.pause_after(n) for n in (0, 1, outbox.DELIVERY_BATCH - 1, outbox.DELIVERY_BATCH)] == [
            0.5,
            0.05,
            0.05,
            0,
        ]

    def test_backoff_doubles_up_to_its_cap(self, settings):
        settings.OUTBOX_BASE_BACKOFF_SECONDS, settings.OUTBOX_MAX_BACKOFF_SECONDS = 0.5, 5
        assert [outbox.backoff_seconds(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]

    def test_the_outbox_breaker_closes_sooner_than_the_request_path_one(self, settings):
        settings.CIRCUIT_RESET_SECONDS, settings.OUTBOX_CIRCUIT_RESET_SECONDS = 5, 1
        assert outbox.outbox_client("service4").breaker.reset_seconds == 1

    def test_a_message_refused_for_good_is_parked_with_a_warning(self, dependencies, message, caplog):
        dependencies.add(responses.PUT, service_url("service1", message.path), status=400, json={"error": {}})
        outbox.deliver_due()
        message.refresh_from_db()
        assert message.failed_at is not None and message.delivered_at is None
        assert [record.levelname for record in caplog.records if "parked" in record.getMessage()] == ["WARNING"]
        assert outbox.outbox_health() == {"outbox": {"waiting": 0, "parked": 1}}

    @pytest.mark.parametrize("status", [500, 408, 429])
    def test_a_transient_refusal_is_retried_until_delivered_once(self, dependencies, message, settings, status):
        settings.OUTBOX_BASE_BACKOFF_SECONDS = 0
        url = service_url("service1", message.path)
        dependencies.add(responses.PUT, url, status=status, json={"error": {}})
        dependencies.add(responses.PUT, url, status=status, json={"error": {}})
        dependencies.add(responses.PUT, url, status=201)
        delivered = [outbox.deliver_due() for _ in range(4)]
        message.refresh_from_db()
        assert delivered == [0, 0, 1, 0]
        assert (message.attempts, message.failed_at) == (3, None)
        assert message.delivered_at is not None

    def test_a_message_another_deliverer_holds_is_left_to_it_until_its_lease_runs_out(self, dependencies, message):
        dependencies.add(responses.PUT, service_url("service1", message.path), status=201)
        OutboxMessage.objects.filter(id=message.id).update(claimed_until=timezone.now() + timedelta(seconds=30))
        assert outbox.deliver_due() == 0
        OutboxMessage.objects.filter(id=message.id).update(claimed_until=timezone.now() - timedelta(seconds=1))
        assert outbox.deliver_due() == 1
        message.refresh_from_db()
        assert (message.attempts, message.claimed_until) == (1, None)

    def test_a_lease_is_taken_once(self, message):
        assert outbox.claim(message) is True
        assert outbox.claim(message) is False

    def test_the_request_id_travels_with_the_message(self, dependencies):
        placing = request_id_var.set("id-of-the-order-request")  # the request that queued the message
        try:
            message = generic_message()
        finally:
            request_id_var.reset(placing)
        events = service_url("service1", message.path)
        dependencies.add(responses.PUT, events, status=201)
        outbox.deliver_due()  # later, in the mule: no request of its own
        (call,) = [call for call in dependencies.calls if call.request.url == events]
        assert call.request.headers["X-Request-ID"] == "id-of-the-order-request"


class TestEventDelivery:
    """Events for the notifications service travel together: one call for all that are due."""

    EVENTS = service_url("service4", outbox.EVENTS_PATH)

    @staticmethod
    def queue_events(count: int) -> list[OutboxMessage]:
        queued = []
        for number in range(count):
            token = request_id_var.set(f"order-request-{number}")
            try:
                queued.append(outbox.event_enqueue(event_type="order.placed", user_id=1, data={"order_id": number}))
            finally:
                request_id_var.reset(token)
        return queued

    def test_the_events_due_go_in_one_call_each_naming_its_id_and_its_orders_request(self, dependencies):
        queued = self.queue_events(3)
        dependencies.add(responses.POST, self.EVENTS, status=200)
        assert outbox.deliver_due() == 3
        (call,) = [call for call in dependencies.calls if call.request.url == self.EVENTS]
        sent = json.loads(call.request.body)["events"]
        assert [(event["event_id"], event["request_id"], event["data"]) for event in sent] == [
            (outbox.event_id_of(message), f"order-request-{number}", {"order_id": number})
            for number, message in enumerate(queued)
        ]
        assert OutboxMessage.objects.filter(delivered_at__isnull=False, attempts=1, claimed_until=None).count() == 3
        assert outbox.deliver_due() == 0

    def test_a_batch_refused_for_good_is_sent_again_one_by_one_and_only_the_bad_event_is_parked(self, dependencies):
        good, bad = self.queue_events(2)
        dependencies.add(responses.POST, self.EVENTS, status=400, json={"error": {}})
        dependencies.add(responses.PUT, service_url("service4", good.path), status=201)
        dependencies.add(responses.PUT, service_url("service4", bad.path), status=400, json={"error": {}})
        assert outbox.deliver_due() == 1
        good.refresh_from_db(), bad.refresh_from_db()
        assert (good.delivered_at is not None, good.failed_at) == (True, None)
        assert (bad.delivered_at, bad.failed_at is not None) == (None, True)

    def test_a_batch_the_receiver_cannot_take_now_is_retried_later_whole(self, dependencies, settings):
        settings.OUTBOX_BASE_BACKOFF_SECONDS = 0
        self.queue_events(2)
        dependencies.add(responses.POST, self.EVENTS, body=requests.ConnectionError())
        dependencies.add(responses.POST, self.EVENTS, status=200)
        assert [outbox.deliver_due() for _ in range(3)] == [0, 2, 0]
        assert sorted(OutboxMessage.objects.values_list("attempts", flat=True)) == [2, 2]

    def test_events_another_deliverer_holds_are_left_to_it(self, dependencies):
        held, free = self.queue_events(2)
        OutboxMessage.objects.filter(id=held.id).update(claimed_until=timezone.now() + timedelta(seconds=30))
        dependencies.add(responses.POST, self.EVENTS, status=200)
        assert outbox.deliver_due() == 1
        (call,) = [call for call in dependencies.calls if call.request.url == self.EVENTS]
        assert [event["event_id"] for event in json.loads(call.request.body)["events"]] == [outbox.event_id_of(free)]


def test_a_key_whose_order_is_still_being_placed_is_a_409_to_send_again(client, catalog):
    Order.objects.create(id=uuid.uuid4(), user_id=2, product_id=1, quantity=1, idempotency_key="busy")
    response = place(client, {"product_id": 1, "quantity": 1}, key="busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_in_progress"
    assert response["Retry-After"] == "1"
    assert catalog.stock == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", True),
        ("quantity", "1"),
        ("quantity", 1.5),
        ("product_id", "1"),
        ("product_id", 2**63),
        ("product_id", 2**64),
    ],
    ids=["quantity-true", "quantity-string", "quantity-float", "product-string", "product-2^63", "product-2^64"],
)
def test_an_order_takes_integers_only_as_json_integers_its_columns_store(client, catalog, field, value):
    response = place(client, {"product_id": 1, "quantity": 1, field: value})
    assert response.status_code == 400
    assert [detail["field"].rsplit(".", 1)[-1] for detail in response.json()["error"]["details"]] == [field]
    assert (Order.objects.count(), catalog.stock) == (0, 10)


def test_a_quantity_with_no_fraction_is_an_integer_as_json_schema_says(client, catalog):
    response = place(client, {"product_id": 1, "quantity": 2.0})
    assert response.status_code == 201
    assert (response.json()["quantity"], catalog.stock) == (2, 8)


@pytest.mark.parametrize("path", ["/orders", f"/orders/{uuid.uuid4()}"])
def test_a_database_that_cannot_be_reached_is_503_with_retry_after_not_a_500(client, monkeypatch, path):
    # The list's query runs lazily, while its response is validated; the single order's in the view.
    def unreachable(*args, **kwargs):
        raise OperationalError("connection to server failed: Connection refused")

    monkeypatch.setattr(connection, "cursor", unreachable)
    response = client.get(PREFIX + path, headers=ADA)
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0
