"""Engines with the healthcheck's start_interval get it: make adds docker-compose.start-interval.yml there (the
Makefile asks scripts/engine-has-start-interval.sh), and the file reaches every container of the stack."""

import json
import subprocess

import pytest

from project import GATEWAY, ROOT, SERVICES, STATUS

SCRIPT = ROOT / "scripts" / "engine-has-start-interval.sh"


@pytest.mark.parametrize(
    "api_version, has_it",
    [("1.41", False), ("1.43", False), ("1.44", True), ("1.47", True), ("1.100", True), ("2.0", True)],
)
def test_start_interval_is_for_api_1_44_and_later(api_version, has_it):
    assert (subprocess.run([SCRIPT, api_version]).returncode == 0) is has_it


def test_the_start_interval_file_checks_every_container_each_second_while_it_starts_then_every_30_s():
    command = ["docker", "compose", "-f", "docker-compose.yml", "-f", "docker-compose.start-interval.yml"]
    merged = subprocess.run(
        [*command, "config", "--format", "json"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    services = json.loads(merged.stdout)["services"]
    assert set(services) == {*SERVICES, GATEWAY, STATUS}
    for name, service in services.items():
        assert (service["healthcheck"]["start_interval"], service["healthcheck"]["interval"]) == ("1s", "30s"), name
