"""An order a crash left pending is given up only once no live request can still hold it."""

import os
import subprocess
import sys
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[1]
READ_SETTINGS = "import config.settings as settings; print(settings.ORDER_PENDING_SECONDS)"


def settings_under_uwsgi(tmp_path: Path, harakiri: list[bytes], **environment: str) -> subprocess.CompletedProcess:
    """Loads the settings in a new interpreter as a uWSGI worker would, with uWSGI's options as given (the module
    uWSGI provides is a stand-in here: uwsgi.ini's harakiri, then the entrypoint's, as uWSGI lists an option given
    twice)."""
    (tmp_path / "uwsgi.py").write_text(f"opt = {{'harakiri': {harakiri!r}}}\nnumproc = 2\n")
    pythonpath = os.pathsep.join([str(tmp_path), str(SERVICE), os.environ.get("PYTHONPATH", "")])
    env = {key: value for key, value in os.environ.items() if key != "ORDER_PENDING_SECONDS"}
    env.update(PYTHONPATH=pythonpath, DATA_DIR=str(tmp_path), **environment)
    return subprocess.run([sys.executable, "-c", READ_SETTINGS], env=env, capture_output=True, text=True, timeout=60)


def test_a_pending_order_is_given_up_five_seconds_after_the_longest_a_request_lives(tmp_path):
    assert settings_under_uwsgi(tmp_path, [b"30"]).stdout.split() == ["35.0"]
    assert settings_under_uwsgi(tmp_path, [b"30", b"10"]).stdout.split() == ["15.0"]


def test_a_pending_time_a_live_request_could_outlast_is_refused_at_start(tmp_path):
    refused = settings_under_uwsgi(tmp_path, [b"30", b"10"], ORDER_PENDING_SECONDS="10")
    assert refused.returncode != 0
    assert "ORDER_PENDING_SECONDS=10: a request lives up to 10 s here" in refused.stderr, refused.stderr
    assert settings_under_uwsgi(tmp_path, [b"30", b"10"], ORDER_PENDING_SECONDS="11").stdout.split() == ["11.0"]
