"""The outbox: calls to other services written in the order's transaction, delivered later with retries.

Its one job: the messages, from enqueueing them to delivering what is due (deliver_due), which the mule of every
replica runs (orders/mule.py). Each message is leased to one
deliverer at a time (a conditional UPDATE, atomic on SQLite and PostgreSQL alike), so with several replicas each
is attempted by one; it is retried with capped exponential backoff on every transient failure (no connection,
a timeout, a 5xx, 408, 429) until delivered, and parked only when the receiver refuses it for good (another 4xx).
Receivers deduplicate by id, so a message delivered twice would still count once.

Events for the notifications service travel together: every event due in a pass goes in one call (one request, one
transaction there), so an order's event costs a share of a request, not one of its own. A batch the receiver refuses
for good is sent again one event at a time, so only the event it was about is parked.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from orders.models import OutboxMessage
from servicekit.context import request_id_var
from servicekit.exceptions import DependencyUnavailable
from servicekit.http import ServiceClient, client_for
from servicekit.retention import delete_in_batches

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


EVENTS_PATH = "/internal/events"


def event_enqueue(*, event_type: str, user_id: int, data: dict) -> OutboxMessage:
    """An event for the notifications service, identified so that it lands in the feed once."""
    event_id = uuid.uuid4()
    body = {"type": event_type, "user_id": user_id, "occurred_at": timezone.now().isoformat(), "data": data}
    return outbox_enqueue(
        service=settings.NOTIFICATIONS_SERVICE, method="PUT", path=f"{EVENTS_PATH}/{event_id}", body=body
    )


def event_id_of(message: OutboxMessage) -> str | None:
    """The event's id when the message is an event for the notifications service (those travel together)."""
    if message.service != settings.NOTIFICATIONS_SERVICE or message.method != "PUT":
        return None
    event_id = message.path.removeprefix(EVENTS_PATH + "/")
    return event_id if event_id != message.path else None


def backoff_seconds(attempts: int) -> float:
    return min(settings.OUTBOX_BASE_BACKOFF_SECONDS * 2 ** (attempts - 1), settings.OUTBOX_MAX_BACKOFF_SECONDS)


def is_transient(status: int) -> bool:
    """A refusal that may pass if tried again: the receiver timed out, was busy, or failed."""
    return status >= 500 or status in (408, 429)


def deliver(message: OutboxMessage) -> None:
    """One attempt; records the outcome on the message and gives up its lease."""
    token = request_id_var.set(message.request_id)
    message.attempts += 1
    try:
        response = outbox_client(message.service).request(message.method, message.path, json=message.body)
        if response.ok:
            message.delivered_at = timezone.now()
        elif is_transient(response.status_code):
            retry_later(message, f"{response.status_code}: {response.text[:500]}")
        else:
            message.failed_at = timezone.now()
            message.last_error = f"{response.status_code}: {response.text[:500]}"
            log.warning(
                "outbox message parked: its receiver refused it for good",
                extra={"message_id": str(message.id), "status": response.status_code, "path": message.path},
            )
    except DependencyUnavailable as error:
        retry_later(message, str(error.details))
    finally:
        request_id_var.reset(token)
    message.claimed_until = None
    fields = ["attempts", "delivered_at", "failed_at", "next_attempt_at", "last_error", "claimed_until"]
    message.save(update_fields=fields)


def retry_later(message: OutboxMessage, error: str) -> None:
    message.next_attempt_at = timezone.now() + timedelta(seconds=backoff_seconds(message.attempts))
    message.last_error = error


def undelivered():
    return OutboxMessage.objects.filter(delivered_at__isnull=True, failed_at__isnull=True)


def unleased(now) -> Q:
    """Messages no deliverer holds: never leased, or the lease ran out."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def claim(message: OutboxMessage) -> bool:
    """Leases the message to this deliverer, unless another holds a lease on it that has not run out."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    return bool(undelivered().filter(unleased(now), id=message.id).update(claimed_until=lease))


def claim_all(messages: list[OutboxMessage]) -> list[OutboxMessage]:
    """Leases what it can of the messages in one UPDATE; returns those it holds. Two deliverers would both hold a
    message only if they chose the same lease to the microsecond: the receiver would then count it once."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    ids = [message.id for message in messages]
    if undelivered().filter(unleased(now), id__in=ids).update(claimed_until=lease) == len(ids):
        return messages
    held = set(OutboxMessage.objects.filter(id__in=ids, claimed_until=lease).values_list("id", flat=True))
    return [message for message in messages if message.id in held]


def deliver_events(messages: list[OutboxMessage]) -> None:
    """One attempt at delivering the events in one call; records each outcome and gives up the leases."""
    batch = [
        {"event_id": event_id_of(message), "request_id": message.request_id, **message.body} for message in messages
    ]
    token = request_id_var.set(uuid.uuid4().hex)  # the delivery's own; each event names its order's request
    try:
        response = outbox_client(settings.NOTIFICATIONS_SERVICE).request("POST", EVENTS_PATH, json={"events": batch})
        outcome = None if response.ok else f"{response.status_code}: {response.text[:500]}"
        refused_for_good = not response.ok and not is_transient(response.status_code)
    except DependencyUnavailable as error:
        outcome, refused_for_good = str(error.details), False
    finally:
        request_id_var.reset(token)
    if refused_for_good:  # one of them is bad: each on its own, so that only that one is parked
        for message in messages:
            deliver(message)
        return
    now = timezone.now()
    for message in messages:
        message.attempts += 1
        message.claimed_until = None
        if outcome is None:
            message.delivered_at = now
        else:
            retry_later(message, outcome)
    if outcome is None:  # the usual case, in one short UPDATE: the orders being placed wait on this file's lock
        ids = [message.id for message in messages]
        OutboxMessage.objects.filter(id__in=ids).update(
            delivered_at=now, attempts=F("attempts") + 1, claimed_until=None
        )
    else:
        fields = ["attempts", "next_attempt_at", "last_error", "claimed_until"]
        OutboxMessage.objects.bulk_update(messages, fields)


# The most messages one pass of deliver_due attempts.
DELIVERY_BATCH = 50


def deliver_due(*, limit: int = DELIVERY_BATCH) -> int:
    """Attempts every message that is due and that no other deliverer holds, oldest first: the events in one
    call, the others one by one. Returns how many were delivered."""
    now = timezone.now()
    due = list(undelivered().filter(unleased(now), next_attempt_at__lte=now)[:limit])
    events: list[OutboxMessage] = []
    others: list[OutboxMessage] = []
    for message in due:
        (events if event_id_of(message) else others).append(message)
    held_events = claim_all(events) if events else []
    if held_events:
        deliver_events(held_events)
    for message in others:
        if claim(message):  # each leased just before its attempt: a lease outlasts one attempt, not a pass
            deliver(message)
    delivered = [message for message in events + others if message.delivered_at is not None]
    # Receivers that took a message: their backlog is due now, woken once per pass.
    for service in {message.service for message in delivered}:
        wake_backlog(service=service)
    return len(delivered)


def deliver_now(message: OutboxMessage) -> None:
    """One attempt right away, by the request that queued the message (once its transaction has committed), so
    that what it tells of happens at once when the receiver answers; the mule retries it otherwise."""
    if claim(message):
        deliver(message)


def outbox_health() -> dict:
    """For the health view: messages waiting to be delivered, and parked ones (a person must look at those)."""
    return {
        "outbox": {
            "waiting": undelivered().count(),
            "parked": OutboxMessage.objects.filter(failed_at__isnull=False).count(),
        }
    }


def prune_delivered(*, batch: int = 1000) -> int:
    """Deletes messages delivered more than OUTBOX_RETENTION_DAYS ago, batch by batch; returns how many."""
    before = timezone.now() - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    return delete_in_batches(OutboxMessage.objects.filter(delivered_at__lt=before), batch=batch)


def wake_backlog(*, service: str) -> None:
    """The receiver is back: its messages still backing off are due now, so a backlog drains at once. Looked for
    first: an UPDATE takes the database's write lock even when it matches nothing (SQLite), and this runs after
    every delivery."""
    backing_off = undelivered().filter(service=service, next_attempt_at__gt=timezone.now())
    if backing_off.exists():
        backing_off.update(next_attempt_at=timezone.now())
