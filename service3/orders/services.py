"""Writes of the orders service: placing and cancelling orders.

Placing reserves stock at the catalog first, under the order's id, then stores the order and its event in one
transaction. If storing fails, the reservation is released; if even that call fails, the release goes into the
outbox and is retried until the catalog takes it. The caller never sees a half-made order.
"""

import logging
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction

from orders.models import Order
from orders.outbox import event_enqueue, outbox_enqueue
from servicekit.auth import Caller
from servicekit.exceptions import ApiError, DependencyUnavailable
from servicekit.http import client_for

log = logging.getLogger(__name__)


def reservation_path(order_id: uuid.UUID) -> str:
    return f"/internal/reservations/{order_id}"


def stock_reserve(*, order_id: uuid.UUID, product_id: int, quantity: int) -> None:
    response = client_for(settings.CATALOG_SERVICE).request(
        "PUT", reservation_path(order_id), json={"product_id": product_id, "quantity": quantity}
    )
    if response.status_code in (200, 201):
        return
    if response.status_code == 404:
        details = [{"field": "body.order.product_id", "message": "No such product", "type": "not_found"}]
        raise ApiError(400, "validation_error", "The request is not valid", details)
    if response.status_code == 409:
        error = response.json()["error"]
        raise ApiError(409, error["code"], error["message"])
    raise DependencyUnavailable(settings.CATALOG_SERVICE, f"answered {response.status_code}")


def stock_release(*, order_id: uuid.UUID) -> None:
    """Releases now if the catalog answers; otherwise leaves it to the outbox. Never raises."""
    try:
        response = client_for(settings.CATALOG_SERVICE).request("DELETE", reservation_path(order_id))
        if response.status_code == 204:
            return
    except DependencyUnavailable:
        pass
    log.warning("stock release deferred to the outbox", extra={"order_id": str(order_id)})
    outbox_enqueue(service=settings.CATALOG_SERVICE, method="DELETE", path=reservation_path(order_id))


def order_for_key(*, caller: Caller, idempotency_key: str, product_id: int, quantity: int) -> Order | None:
    order = Order.objects.filter(user_id=caller.user_id, idempotency_key=idempotency_key).first()
    if order is not None and (order.product_id, order.quantity) != (product_id, quantity):
        raise ApiError(409, "idempotency_key_reused", "This Idempotency-Key was used for another order")
    return order


def order_place(*, caller: Caller, product_id: int, quantity: int, idempotency_key: str | None) -> tuple[Order, bool]:
    """Returns (order, created); the same Idempotency-Key returns the order it made the first time."""
    if idempotency_key:
        existing = order_for_key(
            caller=caller, idempotency_key=idempotency_key, product_id=product_id, quantity=quantity
        )
        if existing is not None:
            return existing, False

    order_id = uuid.uuid4()
    stock_reserve(order_id=order_id, product_id=product_id, quantity=quantity)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                id=order_id,
                user_id=caller.user_id,
                product_id=product_id,
                quantity=quantity,
                idempotency_key=idempotency_key,
            )
            event_enqueue(event_type="order.placed", user_id=caller.user_id, data=order_summary(order))
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key stored its order first: ours gives its stock back.
        stock_release(order_id=order_id)
        if not idempotency_key:
            raise
        existing = order_for_key(
            caller=caller, idempotency_key=idempotency_key, product_id=product_id, quantity=quantity
        )
        return existing, False
    except BaseException:
        stock_release(order_id=order_id)
        raise
    return order, True


@transaction.atomic
def order_cancel(*, order: Order) -> Order:
    if order.status == Order.Status.CANCELLED:
        return order
    order.status = Order.Status.CANCELLED
    order.save(update_fields=["status"])
    event_enqueue(event_type="order.cancelled", user_id=order.user_id, data=order_summary(order))
    transaction.on_commit(lambda: stock_release(order_id=order.id))
    return order


def order_summary(order: Order) -> dict:
    return {"order_id": str(order.id), "product_id": order.product_id, "quantity": order.quantity}
