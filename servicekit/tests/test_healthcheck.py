"""The healthcheck speaks the uwsgi protocol to a socket and passes only on a 200 answer."""

import socket
import struct
import threading

import pytest

from servicekit import healthcheck


def decode_uwsgi_variables(packet: bytes) -> dict[str, str]:
    modifier1, size, modifier2 = struct.unpack("<BHB", packet[:4])
    assert (modifier1, modifier2, size) == (0, 0, len(packet) - 4)
    variables, offset = {}, 4
    while offset < len(packet):
        items = []
        for _ in range(2):
            (length,) = struct.unpack("<H", packet[offset : offset + 2])
            items.append(packet[offset + 2 : offset + 2 + length].decode())
            offset += 2 + length
        variables[items[0]] = items[1]
    return variables


@pytest.fixture
def fake_uwsgi(tmp_path):
    """A one-shot uwsgi server on a unix socket; answers with the status line it is given."""
    path = str(tmp_path / "uwsgi.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received = {}

    def serve(status_line: bytes) -> None:
        connection, _ = server.accept()
        with connection:
            received["variables"] = decode_uwsgi_variables(connection.recv(65536))
            connection.sendall(status_line + b"\r\nContent-Type: application/json\r\n\r\n{}")

    def start(status_line: bytes) -> tuple[str, dict]:
        threading.Thread(target=serve, args=(status_line,), daemon=True).start()
        return path, received

    yield start
    server.close()


def connector(path: str):
    def connect() -> socket.socket:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(path)
        return connection

    return connect


def test_a_200_answer_is_healthy(fake_uwsgi):
    path, received = fake_uwsgi(b"HTTP/1.1 200 OK")
    assert healthcheck.request_status(connector(path), "/api/service1/health/") == 200
    assert received["variables"]["PATH_INFO"] == "/api/service1/health/"
    assert received["variables"]["REQUEST_METHOD"] == "GET"


def test_a_503_answer_is_reported(fake_uwsgi):
    path, _ = fake_uwsgi(b"HTTP/1.1 503 Service Unavailable")
    assert healthcheck.request_status(connector(path), "/api/service1/health/") == 503


def test_a_missing_socket_makes_main_fail(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("servicekit.sockets.SOCKET_DIR", tmp_path)
    monkeypatch.setattr("sys.argv", ["servicekit-healthcheck"])
    assert healthcheck.main() == 1
    assert "unhealthy" in capsys.readouterr().err


def test_its_options_are_a_path_and_a_timeout_and_nothing_else(monkeypatch):
    monkeypatch.chdir("/")
    assert healthcheck.options(["--timeout", "5"]) == {"--path": "/api//health", "--timeout": "5"}
    with pytest.raises(SystemExit):
        healthcheck.options(["--verbose"])


def test_a_check_imports_no_argument_parser_and_no_regular_expressions():
    """The engine runs it every 2 s in every container: a library's imports there are load on the machine."""
    import subprocess
    import sys

    code = (
        "import sys; started = set(sys.modules); import servicekit.healthcheck; "
        "print(sorted({'argparse', 're', 'subprocess', 'pathlib'} & (set(sys.modules) - started)))"
    )
    imported = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"
