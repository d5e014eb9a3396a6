"""Writes of the orders service: placing and cancelling orders, and giving up orders a crash left behind.

Placing an order is a saga of three steps, each durable before the next, so that no crash leaks stock:
1. the order is stored as pending (its intent), before the catalog is asked for anything;
2. the catalog reserves stock under the order's id (idempotent; once released, an id can never take stock);
3. the order becomes placed and its event is queued, in one transaction.
A definite refusal from the catalog (no stock, no product) deletes the intent. An unknown outcome (a timeout, a
5xx: the reservation may exist) deletes it and queues the release in the same transaction. A crash leaves a
pending order; order_sweep_abandoned() gives it up the same way once it is older than any request can live.
The outbox delivers every release, so every reservation ends held by one placed order or released.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.errors import CatalogRefused, OrderAbandoned, OrderInProgress, ProductNotFound
from orders.models import Order, OutboxMessage
from orders.outbox import deliver_now, event_enqueue, outbox_enqueue
from orders.selectors import order_for_key
from servicekit.auth import Caller
from servicekit.exceptions import DependencyUnavailable
from servicekit.http import client_for

log = logging.getLogger(__name__)


def reservation_path(order_id: uuid.UUID) -> str:
    return f"/internal/reservations/{order_id}"


def stock_reserve(*, order_id: uuid.UUID, product_id: int, quantity: int) -> str:
    """Reserves the stock at the catalog; the product's name, as the catalog knows it now."""
    response = client_for(settings.CATALOG_SERVICE).request(
        "PUT", reservation_path(order_id), json={"product_id": product_id, "quantity": quantity}
    )
    if response.status_code in (200, 201):
        return str(response.json().get("product_name", ""))
    if response.status_code == 404:
        raise ProductNotFound(f"No product {product_id}")
    if response.status_code == 409:
        error = response.json()["error"]
        raise CatalogRefused(error["code"], error["message"])
    raise DependencyUnavailable(settings.CATALOG_SERVICE, f"answered {response.status_code}")


def release_enqueue(*, order_id: uuid.UUID) -> OutboxMessage:
    """Queues the release of an order's stock; call inside the transaction that gives the order up."""
    return outbox_enqueue(service=settings.CATALOG_SERVICE, method="DELETE", path=reservation_path(order_id))


@transaction.atomic
def order_abandon(*, order_id: uuid.UUID) -> bool:
    """Gives up a pending order: deletes it and queues the release of whatever stock it may hold. Only one caller
    gives up an order (the conditional delete), so its release is queued once."""
    deleted, _ = Order.objects.filter(id=order_id, status=Order.Status.PENDING).delete()
    if deleted:
        release_enqueue(order_id=order_id)
    return bool(deleted)


def order_sweep_abandoned() -> int:
    """Gives up the pending orders older than any request can live (a crash left them); returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.ORDER_PENDING_SECONDS)
    abandoned = Order.objects.filter(status=Order.Status.PENDING, created_at__lt=cutoff).values_list("id", flat=True)
    given_up = sum(order_abandon(order_id=order_id) for order_id in abandoned)
    if given_up:
        log.warning("gave up orders a crash left pending; their stock is being released", extra={"orders": given_up})
    return given_up


def order_place(*, caller: Caller, product_id: int, quantity: int, idempotency_key: str | None) -> tuple[Order, bool]:
    """Returns (order, created); the same Idempotency-Key returns the order it made the first time. The intent
    is stored first and the key's unique constraint finds a key sent before: no lookup on every order."""
    try:
        with transaction.atomic():
            order = Order.objects.create(
                id=uuid.uuid4(),
                user_id=caller.user_id,
                product_id=product_id,
                quantity=quantity,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # This Idempotency-Key made an order before, or a concurrent request with it stored its intent first.
        if not idempotency_key:
            raise
        existing = order_for_key(
            user_id=caller.user_id, idempotency_key=idempotency_key, product_id=product_id, quantity=quantity
        )
        if existing is None:  # that intent was refused or given up meanwhile
            raise OrderInProgress("Send the order again") from None
        return existing, False

    try:
        product_name = stock_reserve(order_id=order.id, product_id=product_id, quantity=quantity)
    except DependencyUnavailable:
        order_abandon(order_id=order.id)  # the reservation may exist: release it
        raise
    except (ProductNotFound, CatalogRefused):
        Order.objects.filter(id=order.id, status=Order.Status.PENDING).delete()  # refused: nothing was reserved
        raise
    except BaseException:
        order_abandon(order_id=order.id)
        raise

    with transaction.atomic():
        confirmed = Order.objects.filter(id=order.id, status=Order.Status.PENDING).update(
            status=Order.Status.PLACED, product_name=product_name
        )
        if not confirmed:  # given up by the sweeper meanwhile, which released the stock
            raise OrderAbandoned("The order took too long and was given up; send it again")
        order.status, order.product_name = Order.Status.PLACED, product_name
        event_enqueue(event_type="order.placed", user_id=caller.user_id, data=order_summary(order))
    return order, True


@transaction.atomic
def order_cancel(*, order: Order) -> Order:
    """Cancels a placed order once, however many cancels race: one event, one release, both in the outbox."""
    cancelled = Order.objects.filter(id=order.id, status=Order.Status.PLACED).update(status=Order.Status.CANCELLED)
    order.refresh_from_db(fields=["status"])
    if cancelled:
        event_enqueue(event_type="order.cancelled", user_id=order.user_id, data=order_summary(order))
        release = release_enqueue(order_id=order.id)
        # The stock comes back before the answer when the catalog answers; the outbox covers a crash or a failure.
        transaction.on_commit(lambda: deliver_now(release))
    return order


def order_summary(order: Order) -> dict:
    return {
        "order_id": str(order.id),
        "product_id": order.product_id,
        "product_name": order.product_name,
        "quantity": order.quantity,
    }
