"""Writes of the notifications service: receiving events exactly once, one or many in a delivery."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notifications.models import Notification
from servicekit.retention import delete_in_batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    event_id: uuid.UUID
    event_type: str
    user_id: int
    occurred_at: datetime
    data: dict
    request_id: str = "-"


@transaction.atomic
def events_receive(events: list[Event]) -> int:
    """Stores the events not seen before, all in one transaction, and counts the others as redeliveries; returns
    how many were new."""
    by_id: dict[uuid.UUID, Event] = {}
    for event in events:
        by_id.setdefault(event.event_id, event)  # the first of an id sent twice in one batch
    seen = set(Notification.objects.filter(event_id__in=list(by_id)).values_list("event_id", flat=True))
    new = [event for event_id, event in by_id.items() if event_id not in seen]
    # A concurrent delivery of the same event may insert it between the read and here: the key decides, again.
    Notification.objects.bulk_create(
        [
            Notification(
                event_id=event.event_id,
                type=event.event_type,
                user_id=event.user_id,
                occurred_at=event.occurred_at,
                data=event.data,
            )
            for event in new
        ],
        ignore_conflicts=True,
    )
    if seen:
        Notification.objects.filter(event_id__in=seen).update(redeliveries=F("redeliveries") + 1)
    # One line for the whole delivery (a line per event would cost more than storing it), naming each new event
    # with the request that made it, so an order's trail goes on here.
    if new:
        received = [{"event_id": str(event.event_id), "request_id": event.request_id} for event in new]
        log.info("events received", extra={"events": received, "redeliveries": len(seen)})
    return len(new)


def notification_prune(*, batch: int = 1000) -> int:
    """Deletes notifications that arrived more than NOTIFICATION_RETENTION_DAYS ago, batch by batch; returns how
    many. Its event id goes with it: no sender redelivers an event that old (orders keeps delivered messages for
    days, not months)."""
    before = timezone.now() - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    return delete_in_batches(Notification.objects.filter(received_at__lt=before), batch=batch)
