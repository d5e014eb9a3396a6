"""Replicas name their sockets by hostname, and a healthy replica clears the sockets of dead siblings."""

import os
import socket
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


def test_the_healthcheck_reaches_the_socket_uwsgi_binds(socket_dir):
    with listening_socket(sockets.listen_address()) as server, sockets.connect(timeout=1):
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
    assert sockets.remove_dead_sockets() == [dead]
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
