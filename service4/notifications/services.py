"""Writes of the notifications service: receiving events exactly once."""

import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F

from notifications.models import Notification


def event_receive(
    *, event_id: uuid.UUID, event_type: str, user_id: int, occurred_at: datetime, data: dict
) -> tuple[Notification, bool]:
    """Returns (notification, created); an event id seen before returns the stored one unchanged."""
    try:
        with transaction.atomic():
            notification, created = Notification.objects.get_or_create(
                event_id=event_id,
                defaults={"type": event_type, "user_id": user_id, "occurred_at": occurred_at, "data": data},
            )
    except IntegrityError:  # the same event delivered twice at once: the other delivery stored it
        notification, created = Notification.objects.get(event_id=event_id), False
    if not created:
        Notification.objects.filter(event_id=event_id).update(deliveries=F("deliveries") + 1)
    return notification, created
