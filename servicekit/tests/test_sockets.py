"""Replicas name their sockets by hostname, and a healthy replica clears the sockets of dead siblings."""

import os
import socket
import time

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


def test_the_socket_is_named_by_the_hostname(socket_dir):
    assert sockets.listen_address() == str(socket_dir / f"{socket.gethostname()}.sock")


def test_tcp_transport_listens_on_a_port(monkeypatch):
    monkeypatch.setattr(sockets, "TRANSPORT", "tcp")
    monkeypatch.setattr(sockets, "TCP_PORT", 4040)
    assert sockets.listen_address() == "0.0.0.0:4040"


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
