"""A notification is an event as received: its id is the sender's event id, so a redelivery changes nothing."""

from django.db import models


class Notification(models.Model):
    event_id = models.UUIDField(primary_key=True)
    user_id = models.BigIntegerField()
    type = models.CharField(max_length=50)
    occurred_at = models.DateTimeField()
    data = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)  # pruned by it (services)
    # How many times the event arrived again after the first: each one a duplicate, which changed nothing. A
    # sender that delivers each event once keeps this at 0.
    redeliveries = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["user_id", "-occurred_at"])]
