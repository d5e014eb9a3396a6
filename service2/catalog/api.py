"""The catalog API: products for everyone to read and staff to write; reservations for the orders service."""

import re
import uuid
from decimal import Decimal
from typing import Annotated

from django.http import Http404, HttpRequest
from ninja import Field, Schema, Status
from pydantic import BeforeValidator, StrictStr, WithJsonSchema, field_serializer
from pydantic_core import PydanticCustomError

from catalog import selectors, services
from catalog.errors import InsufficientStock, ProductExists, ProductNotFound, ReservationConflict, ReservationReleased
from catalog.models import Product
from servicekit.api import create_api, errors
from servicekit.auth import BearerAuth, require_staff
from servicekit.fields import Id, IntegerOnly, count, path_id, text
from servicekit.internal import ServiceAuth, write_route

api = create_api(
    title="catalog (service2)",
    description="Products, their prices and stock, and stock reservations.",
    statuses={
        ProductExists: 409,
        ProductNotFound: 404,
        InsufficientStock: 409,
        ReservationReleased: 409,
        ReservationConflict: 409,
    },
)

Name = Annotated[StrictStr, text(1, 200)]
# A price is a JSON number or a string of digits with at most two decimals ("4.20"), up to 99,999,999.99: the
# document says exactly this, and nothing else is taken (Decimal alone would take "", "1e3" or " 4").
PRICE_PATTERN = r"^[0-9]{1,8}([.][0-9]{1,2})?$"


def refuse_other_price_text(value: object) -> object:
    if isinstance(value, bool) or (isinstance(value, str) and not re.fullmatch(PRICE_PATTERN, value)):
        raise PydanticCustomError("decimal_parsing", "A price is a number, or digits with at most two decimals")
    return value


Price = Annotated[
    Decimal,
    Field(ge=0, max_digits=10, decimal_places=2),
    BeforeValidator(refuse_other_price_text),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 99999999.99, "multipleOf": 0.01},
                {"type": "string", "pattern": PRICE_PATTERN},
            ]
        },
        mode="validation",
    ),
]
Stock = Annotated[int, count(0, 1_000_000), IntegerOnly]


class ProductIn(Schema):
    name: Name
    price: Price
    stock: Stock


class ProductChanges(Schema):
    name: Name | None = None
    price: Price | None = None
    stock: Stock | None = None


class ProductOut(Schema):
    id: int
    name: str
    price: Decimal
    stock: int

    @field_serializer("price")
    def price_with_cents(self, price: Decimal) -> str:
        """Always two decimal places, as stored: "4.20", whether the client sent 4.2 or "4.20"."""
        return f"{price:.2f}"


class ReservationIn(Schema):
    product_id: Id
    quantity: Annotated[int, count(1, 1000), IntegerOnly]


class ReservationOut(Schema):
    id: uuid.UUID
    product_id: int
    quantity: int
    # The name when the stock was reserved (services.reservation_make): the order's events name what was ordered.
    product_name: str
    status: str


@api.get("/products", response=list[ProductOut])
def product_list(request: HttpRequest):
    return selectors.product_list()


@api.get("/products/{product_id}", response=ProductOut)
def product_get(request: HttpRequest, product_id: int = path_id()):
    return existing_product(product_id)


@api.post("/products", auth=BearerAuth(), response={201: ProductOut, **errors(403, 409)})
def product_create(request: HttpRequest, product: ProductIn):
    require_staff(request.auth)
    return Status(201, services.product_create(**product.dict()))


@api.patch("/products/{product_id}", auth=BearerAuth(), response={200: ProductOut, **errors(403, 409)})
def product_update(request: HttpRequest, changes: ProductChanges, product_id: int = path_id()):
    require_staff(request.auth)
    product = existing_product(product_id)
    return services.product_update(product=product, changes=changes.dict(exclude_none=True))


def existing_product(product_id: int) -> Product:
    product = selectors.product_get(product_id=product_id)
    if product is None:
        raise Http404(f"No product {product_id}")
    return product


@api.put(
    "/internal/reservations/{reservation_id}",
    response={200: ReservationOut, 201: ReservationOut},
    auth=ServiceAuth("reservations"),
    include_in_schema=False,
)
@write_route
def reservation_make(request: HttpRequest, reservation_id: uuid.UUID, reservation: ReservationIn):
    """Idempotent by id: the orders service may retry it safely."""
    made, created = services.reservation_make(reservation_id=reservation_id, **reservation.dict())
    return Status(201 if created else 200, made)


@api.delete(
    "/internal/reservations/{reservation_id}",
    response={204: None},
    auth=ServiceAuth("reservations"),
    include_in_schema=False,
)
@write_route
def reservation_release(request: HttpRequest, reservation_id: uuid.UUID):
    services.reservation_release(reservation_id=reservation_id)
    return Status(204, None)
