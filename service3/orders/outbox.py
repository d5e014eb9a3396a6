"""The outbox: calls to other services written in the order's transaction, delivered later with retries.

A uWSGI mule (orders/outbox_mule.py) runs deliver_forever(); each message is retried with exponential backoff
until its receiver answers 2xx. Receivers deduplicate by id, so a message delivered twice counts once.
"""

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from orders.models import OutboxMessage
from servicekit.context import request_id_var
from servicekit.exceptions import DependencyUnavailable
from servicekit.http import ServiceClient, client_for

log = logging.getLogger(__name__)


def outbox_client(service: str) -> ServiceClient:
    """The outbox backs off per message already: its breakers only spare a receiver that is down, and close soon."""
    return client_for(service, circuit_reset_seconds=settings.OUTBOX_CIRCUIT_RESET_SECONDS)


def outbox_enqueue(*, service: str, method: str, path: str, body: dict | None = None) -> OutboxMessage:
    """Call inside the transaction that makes the change the message tells of."""
    return OutboxMessage.objects.create(
        service=service,
        method=method,
        path=path,
        body=body,
        request_id=request_id_var.get(),
        next_attempt_at=timezone.now(),
    )


def event_enqueue(*, event_type: str, user_id: int, data: dict) -> OutboxMessage:
    """An event for the notifications service, identified so that it lands in the feed once."""
    event_id = uuid.uuid4()
    body = {"type": event_type, "user_id": user_id, "occurred_at": timezone.now().isoformat(), "data": data}
    return outbox_enqueue(
        service=settings.NOTIFICATIONS_SERVICE, method="PUT", path=f"/internal/events/{event_id}", body=body
    )


def backoff_seconds(attempts: int) -> float:
    return min(settings.OUTBOX_BASE_BACKOFF_SECONDS * 2 ** (attempts - 1), settings.OUTBOX_MAX_BACKOFF_SECONDS)


def deliver(message: OutboxMessage) -> None:
    """One attempt; records the outcome on the message."""
    token = request_id_var.set(message.request_id)
    message.attempts += 1
    try:
        response = outbox_client(message.service).request(message.method, message.path, json=message.body)
        if response.ok:
            message.delivered_at = timezone.now()
        else:
            message.failed_at = timezone.now()
            message.last_error = f"{response.status_code}: {response.text[:500]}"
            log.error("outbox message refused", extra={"message_id": str(message.id), "status": response.status_code})
    except DependencyUnavailable as error:
        message.next_attempt_at = timezone.now() + timedelta(seconds=backoff_seconds(message.attempts))
        message.last_error = str(error.details)
    finally:
        request_id_var.reset(token)
    message.save(update_fields=["attempts", "delivered_at", "failed_at", "next_attempt_at", "last_error"])


def deliver_due(*, limit: int = 50) -> int:
    """Attempts every message that is due, oldest first; returns how many were delivered."""
    due = OutboxMessage.objects.filter(
        delivered_at__isnull=True, failed_at__isnull=True, next_attempt_at__lte=timezone.now()
    )[:limit]
    delivered = 0
    for message in due:
        deliver(message)
        if message.delivered_at is not None:
            delivered += 1
            wake_backlog(service=message.service)
    return delivered


def wake_backlog(*, service: str) -> None:
    """The receiver is back: its messages still backing off are due now, so a backlog drains at once."""
    OutboxMessage.objects.filter(
        service=service, delivered_at__isnull=True, failed_at__isnull=True, next_attempt_at__gt=timezone.now()
    ).update(next_attempt_at=timezone.now())


def deliver_forever() -> None:
    log.info("outbox delivery started")
    while True:
        close_old_connections()
        try:
            delivered = deliver_due()
        except Exception:
            log.exception("outbox delivery failed; trying again")
            delivered = 0
        if not delivered:
            time.sleep(settings.OUTBOX_POLL_SECONDS)
