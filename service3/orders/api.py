"""The orders API: place an order (idempotently), list and read your orders, cancel one."""

import uuid
from datetime import datetime
from typing import Annotated

from django.http import Http404, HttpRequest, HttpResponse
from ninja import Header, Schema, Status

from orders import selectors, services
from orders.errors import CatalogRefused, IdempotencyKeyReused, OrderAbandoned, OrderInProgress, ProductNotFound
from orders.models import Order
from servicekit.api import create_api, errors
from servicekit.auth import BearerAuth
from servicekit.errors import error_response
from servicekit.fields import Id, IntegerOnly, count

api = create_api(
    title="orders (service3)",
    description="Orders: stock reserved at the catalog, events to notifications.",
    statuses={CatalogRefused: 409, IdempotencyKeyReused: 409, OrderInProgress: 409, OrderAbandoned: 503},
)


@api.exception_handler(ProductNotFound)
def unknown_product(request: HttpRequest, error: ProductNotFound) -> HttpResponse:
    """The client named a product the catalog does not have: a field of its request is wrong."""
    details = [{"field": "body.order.product_id", "message": "No such product", "type": "not_found"}]
    return error_response(400, "The request is not valid", code="validation_error", details=details)


class OrderIn(Schema):
    product_id: Id
    quantity: Annotated[int, count(1, 1000), IntegerOnly]


class OrderOut(Schema):
    id: uuid.UUID
    product_id: int
    quantity: int
    status: str
    created_at: datetime


IDEMPOTENCY_KEY = Header(None, alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")


@api.post("/orders", auth=BearerAuth(), response={200: OrderOut, 201: OrderOut, **errors(409)})
def order_place(request: HttpRequest, order: OrderIn, idempotency_key: str | None = IDEMPOTENCY_KEY):
    """201 for a new order; 200 with the first order when its Idempotency-Key is sent again."""
    placed, created = services.order_place(
        caller=request.auth, product_id=order.product_id, quantity=order.quantity, idempotency_key=idempotency_key
    )
    return Status(201 if created else 200, placed)


@api.get("/orders", auth=BearerAuth(), response=list[OrderOut])
def order_list(request: HttpRequest):
    return selectors.order_list(user_id=request.auth.user_id)


@api.get("/orders/{order_id}", auth=BearerAuth(), response=OrderOut)
def order_get(request: HttpRequest, order_id: uuid.UUID):
    return your_order(request, order_id)


@api.post("/orders/{order_id}/cancel", auth=BearerAuth(), response={200: OrderOut, **errors(409)})
def order_cancel(request: HttpRequest, order_id: uuid.UUID):
    return services.order_cancel(order=your_order(request, order_id))


def your_order(request: HttpRequest, order_id: uuid.UUID) -> Order:
    order = selectors.order_get(user_id=request.auth.user_id, order_id=order_id)
    if order is None:
        raise Http404(f"No order {order_id}")
    return order
