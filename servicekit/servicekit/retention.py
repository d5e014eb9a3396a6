"""Deleting what a service keeps only for a while (delivered messages, old notifications), without a long lock."""

from django.db.models import QuerySet


def delete_in_batches(rows: QuerySet, *, batch: int = 1000) -> int:
    """Deletes the rows, at most batch of them per statement, so no lock is held for long; returns how many."""
    deleted = 0
    while True:
        keys = list(rows.values_list("pk", flat=True)[:batch])
        if not keys:
            return deleted
        deleted += rows.model.objects.filter(pk__in=keys).delete()[0]
