"""Products, and reservations of their stock keyed by the caller's id so a retried reservation counts once."""

from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=200, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=models.Q(stock__gte=0), name="stock_never_negative")]


class Reservation(models.Model):
    class Status(models.TextChoices):
        RESERVED = "reserved"
        RELEASED = "released"

    id = models.UUIDField(primary_key=True)
    # Null for a release that arrived before its reservation: it stops that reservation from ever taking stock.
    product = models.ForeignKey(Product, null=True, on_delete=models.PROTECT, related_name="reservations")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    created_at = models.DateTimeField(auto_now_add=True)
