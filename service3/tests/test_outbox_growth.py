"""The outbox does not grow forever: delivered messages are pruned after a retention, and what the health check
counts on every Docker healthcheck costs the same however many were delivered."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from orders import outbox
from orders.models import OutboxMessage

pytestmark = pytest.mark.django_db


def message(**fields) -> OutboxMessage:
    now = timezone.now()
    return OutboxMessage(service="service4", method="POST", path="/events", request_id="r", next_attempt_at=now,
                         **fields)  # fmt: skip


def test_messages_delivered_before_the_retention_are_pruned_and_no_others(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    now = timezone.now()
    old = [message(delivered_at=now - timedelta(days=8)) for _ in range(3)]
    kept = [message(delivered_at=now - timedelta(days=6)), message(), message(failed_at=now - timedelta(days=30))]
    OutboxMessage.objects.bulk_create(old + kept)
    assert outbox.prune_delivered(batch=2) == 3
    assert set(OutboxMessage.objects.values_list("id", flat=True)) == {kept_message.id for kept_message in kept}


def test_the_command_uwsgi_runs_hourly_prunes(settings, capsys):
    settings.OUTBOX_RETENTION_DAYS = 1
    OutboxMessage.objects.bulk_create([message(delivered_at=timezone.now() - timedelta(days=2))])
    call_command("prune_outbox")
    assert capsys.readouterr().out.strip() == "pruned 1 delivered outbox message(s)"
    assert not OutboxMessage.objects.exists()


def plan(queryset) -> str:
    """The database's plan for a query, where it may use an index instead of reading the whole table."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a small table would be read whole anyway
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


@pytest.mark.parametrize(
    "counted",
    [outbox.undelivered, lambda: OutboxMessage.objects.filter(failed_at__isnull=False)],
    ids=["waiting", "parked"],
)
def test_what_the_health_check_counts_is_found_by_an_index_not_by_reading_every_delivered_message(counted):
    found = plan(counted().values("pk"))
    table = OutboxMessage._meta.db_table
    assert f"Seq Scan on {table}" not in found, found
    assert f"SCAN {table}\n" not in f"{found}\n", found  # SQLite: a scan of the table, not of an index


def test_the_health_check_counts_waiting_and_parked_messages():
    now = timezone.now()
    OutboxMessage.objects.bulk_create([message(), message(delivered_at=now), message(failed_at=now)])
    assert outbox.outbox_health() == {"outbox": {"waiting": 1, "parked": 1}}
