"""Writes of the notifications service: receiving events exactly once."""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from notifications.models import Notification
from servicekit.retention import delete_in_batches


def event_receive(
    *, event_id: uuid.UUID, event_type: str, user_id: int, occurred_at: datetime, data: dict
) -> tuple[Notification, bool]:
    """Returns (notification, created); an event id seen before returns the stored one unchanged."""
    # The unique event id decides, not a read before: a redelivery, even a concurrent one, fails the insert.
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                event_id=event_id, type=event_type, user_id=user_id, occurred_at=occurred_at, data=data
            )
        return notification, True
    except IntegrityError:
        Notification.objects.filter(event_id=event_id).update(redeliveries=F("redeliveries") + 1)
        return Notification.objects.get(event_id=event_id), False


def notification_prune(*, batch: int = 1000) -> int:
    """Deletes notifications that arrived more than NOTIFICATION_RETENTION_DAYS ago, batch by batch; returns how
    many. Its event id goes with it: no sender redelivers an event that old (orders keeps delivered messages for
    days, not months)."""
    before = timezone.now() - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    return delete_in_batches(Notification.objects.filter(received_at__lt=before), batch=batch)
