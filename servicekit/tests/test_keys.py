"""The secret key is made once, kept private, and shared by every process that races to make it."""

import multiprocessing
import stat

from servicekit.keys import read_or_create_secret_key


def test_a_missing_key_is_created_private(tmp_path):
    key = read_or_create_secret_key(tmp_path / "secret_key")
    assert len(key) >= 50
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_an_existing_key_is_kept(tmp_path):
    (tmp_path / "secret_key").write_text("kept\n")
    assert read_or_create_secret_key(tmp_path / "secret_key") == "kept"


def test_racing_processes_all_get_the_same_key(tmp_path):
    with multiprocessing.get_context("fork").Pool(8) as pool:
        keys = pool.map(read_or_create_secret_key, [tmp_path / "secret_key"] * 32)
    assert len(set(keys)) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret_key"]
