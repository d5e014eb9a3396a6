"""Replicas on one host take turns to migrate: the second waits for the first to release the file lock."""

import logging
import multiprocessing
import time

import pytest
from django.core.management.base import CommandError
from django.db import OperationalError

from servicekit.management.commands import migrate_serialised
from servicekit.management.commands.migrate_serialised import file_lock


def hold_then_note(lock_path, hold_seconds, notes):
    with file_lock(lock_path):
        notes.put(("acquired", time.monotonic()))
        time.sleep(hold_seconds)
        notes.put(("released", time.monotonic()))


def test_a_second_replica_waits_until_the_first_releases_the_lock(tmp_path):
    context = multiprocessing.get_context("fork")
    notes = context.Queue()
    lock_path = tmp_path / "data" / ".migrate.lock"
    first = context.Process(target=hold_then_note, args=(lock_path, 0.5, notes))
    first.start()
    assert notes.get(timeout=5)[0] == "acquired"
    second = context.Process(target=hold_then_note, args=(lock_path, 0, notes))
    second.start()
    for process in (first, second):
        process.join(timeout=10)
    # In the order they happened: a queue delivers each process's notes by its own feeder thread, so the second's
    # "acquired" can arrive before the first's "released" that was put earlier (it failed so once in CI).
    events = sorted((notes.get(timeout=1) for _ in range(3)), key=lambda event: event[1])
    assert [name for name, _ in events] == ["released", "acquired", "released"]


def test_waiting_for_the_database_says_every_few_seconds_what_it_answered(monkeypatch, caplog):
    """A database that refuses the password: on main, 60 s of silence, then only "did not answer"."""
    clock = [0.0]
    monkeypatch.setattr(migrate_serialised.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(migrate_serialised.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))

    class RefusingDatabase:
        def ensure_connection(self) -> None:
            raise OperationalError('FATAL:  password authentication failed for user "service3"')

    monkeypatch.setattr(migrate_serialised, "connection", RefusingDatabase())
    with caplog.at_level(logging.WARNING), pytest.raises(CommandError, match="did not answer within 20 s"):
        migrate_serialised.wait_for_database(20)
    said = [record.getMessage() for record in caplog.records if record.name == migrate_serialised.__name__]
    assert len(said) == 4, said  # at 5, 10, 15 and 20 s
    assert all("password authentication failed" in line for line in said), said
