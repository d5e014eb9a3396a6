"""The orders API: place an order (idempotently), list and read your orders, cancel one."""

import uuid
from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Header, Schema, Status

from orders import services
from orders.models import Order
from servicekit.api import create_api
from servicekit.auth import BearerAuth

api = create_api(
    title="orders (service3)", description="Orders: stock reserved at the catalog, events to notifications."
)


class OrderIn(Schema):
    product_id: int = Field(..., ge=1)
    quantity: int = Field(..., ge=1, le=1000)


class OrderOut(Schema):
    id: uuid.UUID
    product_id: int
    quantity: int
    status: str
    created_at: datetime


IDEMPOTENCY_KEY = Header(None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")


@api.post("/orders", auth=BearerAuth(), response={200: OrderOut, 201: OrderOut})
def order_place(request: HttpRequest, order: OrderIn, idempotency_key: str | None = IDEMPOTENCY_KEY):
    """201 for a new order; 200 with the first order when its Idempotency-Key is sent again."""
    placed, created = services.order_place(
        caller=request.auth, product_id=order.product_id, quantity=order.quantity, idempotency_key=idempotency_key
    )
    return Status(201 if created else 200, placed)


@api.get("/orders", auth=BearerAuth(), response=list[OrderOut])
def order_list(request: HttpRequest):
    return Order.objects.filter(user_id=request.auth.user_id)


@api.get("/orders/{order_id}", auth=BearerAuth(), response=OrderOut)
def order_get(request: HttpRequest, order_id: uuid.UUID):
    return get_object_or_404(Order, id=order_id, user_id=request.auth.user_id)


@api.post("/orders/{order_id}/cancel", auth=BearerAuth(), response=OrderOut)
def order_cancel(request: HttpRequest, order_id: uuid.UUID):
    order = get_object_or_404(Order, id=order_id, user_id=request.auth.user_id)
    return services.order_cancel(order=order)
