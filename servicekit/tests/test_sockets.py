"""Replicas name their sockets by hostname, and a healthy replica clears the sockets of dead siblings."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from servicekit import sockets


@pytest.fixture
def socket_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(sockets, "SOCKET_DIR", tmp_path)
    return tmp_path


def listening_socket(path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    return server


def dead_socket(path):
    listening_socket(path).close()  # the file stays, nothing listens: what SIGKILL leaves
    return path


def age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def address_of_replica(hostname, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    return Path(sockets.listen_address())


def test_each_replica_has_a_socket_of_its_own_where_the_gateway_looks(socket_dir, monkeypatch):
    first, second = address_of_replica("replica-a", monkeypatch), address_of_replica("replica-b", monkeypatch)
    assert first != second
    # The gateway routes to every *.sock in the service's socket volume (nginx/entrypoint.sh).
    assert [first.parent, second.parent] == [socket_dir, socket_dir]
    assert first.suffix == second.suffix == ".sock"


def test_the_healthcheck_reaches_the_socket_named_by_the_hostname_where_the_gateway_looks(socket_dir, monkeypatch):
    """Spelled out, not taken from own_socket_path(): the gateway globs <service volume>/*.sock (entrypoint.sh)."""
    monkeypatch.setattr(socket, "gethostname", lambda: "3874a7f88d59")
    with listening_socket(socket_dir / "3874a7f88d59.sock") as server, sockets.connect(timeout=1):
        server.accept()[0].close()


def test_the_healthcheck_reaches_the_port_uwsgi_binds_over_tcp(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as server:
        monkeypatch.setattr(sockets, "TRANSPORT", "tcp")
        monkeypatch.setattr(sockets, "TCP_PORT", server.getsockname()[1])
        host, port = sockets.listen_address().rsplit(":", 1)
        assert (host, int(port)) == ("0.0.0.0", server.getsockname()[1])  # every interface: the gateway is elsewhere
        with sockets.connect(timeout=1):
            server.accept()[0].close()


def test_an_old_dead_socket_is_removed(socket_dir):
    dead = dead_socket(socket_dir / "killed.sock")
    age(dead, 60)
    assert sockets.remove_dead_sockets() == [str(dead)]
    assert not dead.exists()


def test_a_live_socket_is_kept(socket_dir):
    live = socket_dir / "sibling.sock"
    with listening_socket(live):
        age(live, 60)
        assert sockets.remove_dead_sockets() == []
        assert live.exists()


def test_a_young_socket_is_kept_even_if_nothing_answers_yet(socket_dir):
    starting = dead_socket(socket_dir / "starting.sock")
    assert sockets.remove_dead_sockets() == []
    assert starting.exists()


def test_the_name_of_a_replica_whose_socket_is_gone_is_removed_and_a_live_ones_kept(socket_dir):
    (socket_dir / "killed.name").write_text("microstack-service1-2\n")
    (socket_dir / "sibling.name").write_text("microstack-service1-3\n")
    with listening_socket(socket_dir / "sibling.sock"):
        assert sockets.remove_dead_sockets() == [str(socket_dir / "killed.name")]
    assert (socket_dir / "sibling.name").exists()


def test_the_draining_mark_of_a_replica_killed_while_draining_is_removed_and_a_draining_ones_kept(socket_dir):
    (socket_dir / "killed.draining").touch()
    (socket_dir / "draining.draining").touch()
    with listening_socket(socket_dir / "draining.sock"):
        assert sockets.remove_dead_sockets() == [str(socket_dir / "killed.draining")]
    assert (socket_dir / "draining.draining").exists()


def test_a_replica_publishes_the_name_dns_gives_its_address_beside_its_socket(socket_dir, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "a371c037199e")
    monkeypatch.setattr(socket, "gethostbyname", lambda host: "172.30.0.2")
    answer = "172.30.0.2      microstack-service1-2.microstack_backend\n"
    ran = []

    def getent(command, **options):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=answer)

    monkeypatch.setattr(subprocess, "run", getent)
    sockets.publish_container_name()
    assert ran == [["/usr/bin/getent", "-s", "dns", "hosts", "172.30.0.2"]]  # DNS only: /etc/hosts has the hostname
    assert (socket_dir / "a371c037199e.name").read_text() == "microstack-service1-2\n"
