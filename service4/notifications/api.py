"""The notifications API: each user's feed, and the internal endpoint the orders outbox delivers events to."""

import uuid
from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Schema, Status

from notifications import selectors, services
from notifications.models import Notification
from servicekit.api import create_api
from servicekit.auth import BearerAuth
from servicekit.context import request_id_var
from servicekit.fields import Id
from servicekit.internal import ServiceAuth, write_route

api = create_api(title="notifications (service4)", description="Each user's feed of order events.")

MESSAGES = {
    "order.placed": "Your order of {quantity} x {product} is placed.",
    "order.cancelled": "Your order of {quantity} x {product} is cancelled.",
}
# The most events one delivery may carry: the orders outbox sends at most its pass's 50.
EVENTS_PER_BATCH = 100
# The events this service takes: any other type is refused (400), so every stored event has a message.
EventType = Literal["order.placed", "order.cancelled"]


class EventIn(Schema):
    type: EventType
    user_id: Id
    occurred_at: datetime
    data: dict


class EventItem(EventIn):
    event_id: uuid.UUID
    # The request that made the event (the order's), so that its arrival here is logged under that request.
    request_id: str = Field("-", max_length=128)


class EventBatch(Schema):
    events: list[EventItem] = Field(..., min_length=1, max_length=EVENTS_PER_BATCH)


class NotificationOut(Schema):
    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    data: dict
    message: str

    @staticmethod
    def resolve_message(notification: Notification) -> str:
        """The event's message; only this service's own templates are ever formatted, never stored text."""
        template = MESSAGES.get(notification.type)
        if template is None:
            return notification.type
        try:
            data = notification.data
            # The product's name as it was at order time; events of older orders name only its id.
            product = data.get("product_name") or f"product {data['product_id']}"
            return template.format_map({**data, "product": product})
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            return notification.type


def received(event: EventIn, event_id: uuid.UUID, request_id: str) -> services.Event:
    return services.Event(
        event_id=event_id,
        event_type=event.type,
        user_id=event.user_id,
        occurred_at=event.occurred_at,
        data=event.data,
        request_id=request_id,
    )


@api.get("/feed", auth=BearerAuth(), response=list[NotificationOut])
def feed(request: HttpRequest, limit: int = Query(100, ge=1, le=1000)):
    """The caller's notifications, newest first."""
    return selectors.notification_feed(user_id=request.auth.user_id, limit=limit)


@api.put(
    "/internal/events/{event_id}",
    response={200: None, 201: None},
    auth=ServiceAuth("events"),
    include_in_schema=False,
)
@write_route
def event_receive(request: HttpRequest, event_id: uuid.UUID, event: EventIn):
    """Idempotent by event id: 201 the first time, 200 for a redelivery."""
    created = services.events_receive([received(event, event_id, request_id_var.get())]) == 1
    return Status(201 if created else 200, None)


@api.post("/internal/events", response={200: None}, auth=ServiceAuth("events"), include_in_schema=False)
@write_route
def events_receive(request: HttpRequest, batch: EventBatch):
    """Many events in one call and one transaction, each idempotent by its id as above: the outbox delivers what
    piled up in one request, not one request per event. All are stored, or (a 400) none."""
    services.events_receive([received(event, event.event_id, event.request_id) for event in batch.events])
    return Status(200, None)
