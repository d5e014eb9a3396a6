"""Reads of the notifications service."""

from django.db.models import QuerySet

from notifications.models import Notification


def notification_feed(*, user_id: int, limit: int) -> QuerySet[Notification]:
    """The user's notifications, newest first (the model's ordering)."""
    return Notification.objects.filter(user_id=user_id)[:limit]
