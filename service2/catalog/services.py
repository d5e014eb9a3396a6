"""Writes of the catalog: products (staff), and reserving and releasing stock (the orders service)."""

import uuid
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F

from catalog.errors import InsufficientStock, ProductExists, ProductNotFound, ReservationConflict, ReservationReleased
from catalog.models import Product, Reservation


def name_taken(name: str) -> ProductExists:
    return ProductExists(f"A product named {name!r} exists")


def product_create(*, name: str, price: Decimal, stock: int) -> Product:
    # The unique constraint decides, not a check before: two concurrent creates of one name cannot both pass it.
    try:
        with transaction.atomic():
            return Product.objects.create(name=name, price=price, stock=stock)
    except IntegrityError:
        raise name_taken(name) from None


def product_update(*, product: Product, changes: dict) -> Product:
    for field, value in changes.items():
        setattr(product, field, value)
    try:
        with transaction.atomic():
            product.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise name_taken(changes["name"]) from None
    return product


@transaction.atomic
def reservation_make(*, reservation_id: uuid.UUID, product_id: int, quantity: int) -> tuple[Reservation, bool]:
    """Takes quantity off the product's stock, once per reservation id; returns (reservation, created), the
    reservation with the product's name as it is now (product_name). The reservation is stored first: its id's
    primary key finds one made before (a retry) or concurrently, with no lookup on every order."""
    try:
        with transaction.atomic():
            reservation = Reservation.objects.create(
                id=reservation_id, product_id=product_id, quantity=quantity, status=Reservation.Status.RESERVED
            )
    except IntegrityError:
        existing = Reservation.objects.get(id=reservation_id)
        if existing.status == Reservation.Status.RELEASED:
            raise ReservationReleased("This reservation was released and cannot be made again") from None
        if (existing.product_id, existing.quantity) != (product_id, quantity):
            raise ReservationConflict("This reservation id holds another product or quantity") from None
        existing.product_name = product_name(product_id)
        return existing, False
    # One conditional UPDATE: the database checks and takes the stock in one step, so concurrent
    # reservations can never take it below zero. Refused, the transaction takes the reservation back.
    taken = Product.objects.filter(id=product_id, stock__gte=quantity).update(stock=F("stock") - quantity)
    if not taken:
        if not Product.objects.filter(id=product_id).exists():
            raise ProductNotFound(f"No product {product_id}")
        raise InsufficientStock(f"Not enough stock of product {product_id}")
    reservation.product_name = product_name(product_id)
    return reservation, True


def product_name(product_id: int) -> str:
    return Product.objects.filter(id=product_id).values_list("name", flat=True).first() or ""


@transaction.atomic
def reservation_release(*, reservation_id: uuid.UUID) -> None:
    """Gives a reservation's stock back, once; releasing an unknown id blocks that reservation for good."""
    reservation = Reservation.objects.select_for_update().filter(id=reservation_id).first()
    if reservation is None:
        try:
            with transaction.atomic():
                Reservation.objects.create(id=reservation_id, quantity=0, status=Reservation.Status.RELEASED)
            return
        except IntegrityError:  # the reservation was made concurrently: release it
            reservation = Reservation.objects.select_for_update().get(id=reservation_id)
    if reservation.status == Reservation.Status.RELEASED:
        return
    Product.objects.filter(id=reservation.product_id).update(stock=F("stock") + reservation.quantity)
    reservation.status = Reservation.Status.RELEASED
    reservation.save(update_fields=["status"])
