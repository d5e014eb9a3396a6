"""Reads of the catalog: products, and the stock report the order saga is checked against."""

from django.db.models import Q, QuerySet, Sum

from catalog.models import Product, Reservation


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def product_get(*, product_id: int) -> Product | None:
    return Product.objects.filter(id=product_id).first()


def stock_report() -> dict:
    """Per product, its stock and the stock its reservations hold; and every held reservation by id.

    stock + held is what the product had before any order: an order saga that leaks leaves it short.
    """
    held = Sum("reservations__quantity", filter=Q(reservations__status=Reservation.Status.RESERVED), default=0)
    products = {
        str(product.id): {"stock": product.stock, "held": product.held}
        for product in Product.objects.annotate(held=held)
    }
    reservations = {
        str(reservation.id): {"product_id": reservation.product_id, "quantity": reservation.quantity}
        for reservation in Reservation.objects.filter(status=Reservation.Status.RESERVED)
    }
    return {"products": products, "held": reservations}
