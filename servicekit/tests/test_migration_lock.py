"""Replicas on one host take turns to migrate: the second waits for the first to release the file lock."""

import multiprocessing
import time

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
    events = [notes.get(timeout=1) for _ in range(3)]
    assert [name for name, _ in events] == ["released", "acquired", "released"]
    assert events[1][1] >= events[0][1]
