"""Engines with the healthcheck's start_interval get it: make adds docker-compose.start-interval.yml there (the
Makefile asks scripts/engine-has-start-interval.sh), and the file reaches every container of the stack."""

import json
import os
import shutil
import subprocess

import pytest

from project import GATEWAY, METRICS_PROFILE, PROMETHEUS, ROOT, SERVICES, STATUS, compose_seconds

SCRIPT = ROOT / "scripts" / "engine-has-start-interval.sh"


@pytest.mark.parametrize(
    "api_version, has_it",
    [("1.41", False), ("1.43", False), ("1.44", True), ("1.47", True), ("1.100", True), ("2.0", True)],
)
def test_start_interval_is_for_api_1_44_and_later(api_version, has_it):
    assert (subprocess.run([SCRIPT, api_version]).returncode == 0) is has_it


def compose_files_make_chooses(tmp_path, api_version: str, database: str = "sqlite") -> str:
    """COMPOSE_FILE as make exports it to every command, on an engine of that API version (a `docker` in front of
    the real one answers `docker version` with it)."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    real = shutil.which("docker")
    (fake / "docker").write_text(
        f'#!/bin/sh\n[ "$1" = version ] && {{ echo {api_version}; exit 0; }}\nexec {real} "$@"\n'
    )
    (fake / "docker").chmod(0o755)
    # Not the settings of a make this suite may run under (make test passes DB=... down to every make it starts).
    inherited = ("COMPOSE_FILE", "DB", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    environment = {key: value for key, value in os.environ.items() if key not in inherited}
    environment["PATH"] = f"{fake}:{environment['PATH']}"
    print_it = 'compose-file: ; @echo "$$COMPOSE_FILE"'
    printed = subprocess.run(
        ["make", "--no-print-directory", "--eval", print_it, "compose-file", f"DB={database}"],
        cwd=ROOT, env=environment, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return printed.stdout.strip()


def test_make_adds_the_start_interval_file_on_engines_that_have_it_and_only_there(tmp_path):
    assert "COMPOSE_FILE=" not in (ROOT / ".env").read_text(), "a COMPOSE_FILE in .env is the user's choice"
    assert compose_files_make_chooses(tmp_path, "1.43") == ""
    assert compose_files_make_chooses(tmp_path, "1.44") == "docker-compose.yml:docker-compose.start-interval.yml"
    assert compose_files_make_chooses(tmp_path, "1.41", "postgres") == "docker-compose.yml:docker-compose.postgres.yml"
    assert (
        compose_files_make_chooses(tmp_path, "1.45", "postgres")
        == "docker-compose.yml:docker-compose.postgres.yml:docker-compose.start-interval.yml"
    )


def test_where_make_adds_it_every_container_is_checked_each_second_while_it_starts_then_at_an_interval_of_its_own(
    tmp_path,
):
    """What a user gets: every container of the stack checked every second while it starts, then every 30 s or
    more, each container at an interval no other has: started together at one interval, their checks, a process
    in each, would all fall at the same moment, every time (docs/scaling.md, "p99 at 70 % of the peak")."""
    environment = {
        **os.environ,
        "COMPOSE_FILE": compose_files_make_chooses(tmp_path, "1.44"),
        "COMPOSE_PROFILES": METRICS_PROFILE,
    }
    merged = subprocess.run(
        ["docker", "compose", "config", "--format", "json"],
        cwd=ROOT, env=environment, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    services = json.loads(merged.stdout)["services"]
    assert set(services) == {*SERVICES, GATEWAY, STATUS, PROMETHEUS}
    assert {name: service["healthcheck"]["start_interval"] for name, service in services.items()} == dict.fromkeys(
        services, "1s"
    )
    intervals = {name: compose_seconds(service["healthcheck"]["interval"]) for name, service in services.items()}
    assert min(intervals.values()) >= 30, intervals
    assert len(set(intervals.values())) == len(intervals), intervals
