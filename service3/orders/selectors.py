"""Reads of the orders service."""

import uuid

from django.db.models import QuerySet

from orders.errors import IdempotencyKeyReused, OrderInProgress
from orders.models import Order


def order_list(*, user_id: int) -> QuerySet[Order]:
    return Order.objects.filter(user_id=user_id)


def order_get(*, user_id: int, order_id: uuid.UUID) -> Order | None:
    """The user's order, or None: another user's order is as unknown as one that does not exist."""
    return Order.objects.filter(id=order_id, user_id=user_id).first()


def order_for_key(*, user_id: int, idempotency_key: str, product_id: int, quantity: int) -> Order | None:
    """The order this key made, if any. Refused when the key was used for another order, or when its order is
    still being placed (it may yet be given up: the client sends it again in a moment)."""
    order = Order.objects.filter(user_id=user_id, idempotency_key=idempotency_key).first()
    if order is None:
        return None
    if (order.product_id, order.quantity) != (product_id, quantity):
        raise IdempotencyKeyReused("This Idempotency-Key was used for another order")
    if order.status == Order.Status.PENDING:
        raise OrderInProgress("The order with this Idempotency-Key is still being placed; send it again in a moment")
    return order
