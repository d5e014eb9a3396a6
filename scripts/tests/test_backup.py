"""backup.py's checks of a copy, on files made here: no Docker engine needed."""

import sqlite3
import stat

import pytest

from backup import copy_in, private_file, sqlite_apps
from project import ToolError


def a_database(path, apps):
    with sqlite3.connect(path) as database:
        database.execute("CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, app TEXT, name TEXT, applied TEXT)")
        database.executemany("INSERT INTO django_migrations (app, name, applied) VALUES (?, '0001_initial', '')",
                             [(app,) for app in apps])  # fmt: skip
    return path


def test_the_copy_is_the_backups_own_file_by_its_own_name(tmp_path):
    a_database(tmp_path / "service2.sqlite3", ["catalog"])
    (tmp_path / "service2.pgdump").write_bytes(b"PGDMP")
    assert copy_in(tmp_path, "service2", "sqlite") == tmp_path / "service2.sqlite3"
    assert copy_in(tmp_path, "service2", "postgresql") == tmp_path / "service2.pgdump"


@pytest.mark.parametrize("where", ["in the backup's folder", "outside it"])
def test_a_link_in_the_copys_place_is_refused_wherever_it_points(tmp_path, where):
    (tmp_path / "backup").mkdir()
    target = a_database(tmp_path / ("backup" if where == "in the backup's folder" else "") / "other.db", ["catalog"])
    (tmp_path / "backup" / "service2.sqlite3").symlink_to(target)
    with pytest.raises(ToolError, match="not a file of the backup's own folder"):
        copy_in(tmp_path / "backup", "service2", "sqlite")


def test_the_apps_are_read_from_the_copy_itself(tmp_path):
    copy = a_database(tmp_path / "service1.sqlite3", ["accounts", "auth", "servicekit"])
    before = copy.read_bytes()
    assert sqlite_apps(copy) == {"accounts", "auth", "servicekit"}
    assert copy.read_bytes() == before  # opened read-only: not a byte changed


def test_a_file_that_is_no_database_is_refused(tmp_path):
    (tmp_path / "service1.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(ToolError, match="is not a service's SQLite database"):
        sqlite_apps(tmp_path / "service1.sqlite3")


def test_a_private_file_is_its_owners_alone_and_never_follows_a_link(tmp_path):
    with private_file(tmp_path / "copy") as written:
        written.write(b"x")
    assert stat.S_IMODE((tmp_path / "copy").stat().st_mode) == 0o600
    (tmp_path / "planted").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        private_file(tmp_path / "planted")
    assert not (tmp_path / "target").exists()
