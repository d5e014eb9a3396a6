"""Orders, and the outbox: HTTP calls to other services stored in the same transaction as the order."""

import uuid

from django.db import models


class Order(models.Model):
    class Status(models.TextChoices):
        # Stored before the catalog is asked for stock: a crash after that leaves this trace, which
        # orders.services.order_sweep_abandoned() turns into a release.
        PENDING = "pending"
        PLACED = "placed"
        CANCELLED = "cancelled"

    # Also the id of the order's stock reservation at the catalog.
    id = models.UUIDField(primary_key=True)
    user_id = models.BigIntegerField(db_index=True)
    product_id = models.BigIntegerField()
    # As the catalog named it when the stock was reserved (empty until then).
    product_name = models.CharField(max_length=200, blank=True, default="")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user_id", "idempotency_key"], name="one_order_per_idempotency_key"),
        ]


class OutboxMessage(models.Model):
    """A call another service must receive at least once; receivers are idempotent, so once is what counts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    service = models.CharField(max_length=50)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    body = models.JSONField(null=True)
    request_id = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, db_index=True)
    # Parked: the receiver refused the call for good (a 4xx other than 408 and 429): retrying cannot help, a
    # person must look. Every other failure is retried.
    failed_at = models.DateTimeField(null=True)
    last_error = models.TextField(blank=True)
    # A deliverer's lease on the message: only the one that set it attempts it, until it runs out.
    claimed_until = models.DateTimeField(null=True)

    class Meta:
        ordering = ["created_at"]
        # The health check counts the waiting and the parked messages on every Docker healthcheck: these
        # indexes hold only those rows, so the counts cost the same however many were delivered.
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(delivered_at__isnull=True, failed_at__isnull=True),
                name="outbox_waiting",
            ),
            models.Index(fields=["failed_at"], condition=models.Q(failed_at__isnull=False), name="outbox_parked"),
        ]
