"""Calls over a unix socket keep their connections: one pool per socket, as large as a replica's threads."""

import logging
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote

import pytest
import requests

from servicekit.http import POOL_SIZE, PooledUnixAdapter


class SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's internal listener

    def do_GET(self):
        time.sleep(0.05)  # long enough for the threads' calls to overlap
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args):
        pass


class GatewayLikeServer(socketserver.ThreadingUnixStreamServer):
    # nginx's backlog (511): with socketserver's 5, eight threads connecting at once could meet EAGAIN, a refusal
    # no gateway gives.
    request_queue_size = 511


@pytest.fixture
def socket_url(tmp_path):
    path = tmp_path / "gateway.sock"
    server = GatewayLikeServer(str(path), SlowHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http+unix://{quote(str(path), safe='')}"
    server.shutdown()
    server.server_close()


def test_threads_calling_routes_at_once_reuse_connections_without_a_pool_full_warning(socket_url, caplog):
    session = requests.Session()
    session.mount("http+unix://", PooledUnixAdapter())
    threads = 8
    assert threads <= POOL_SIZE

    def call_twice(n: int) -> list[int]:
        # Two routes, each called by every thread: a pool per URL would keep one connection of each.
        return [session.get(f"{socket_url}/api/orders/{n % 2}", timeout=5).status_code for _ in range(2)]

    with caplog.at_level(logging.WARNING, logger="urllib3"):
        results = []
        workers = [threading.Thread(target=lambda n=n: results.append(call_twice(n))) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=10)

    assert results == [[200, 200]] * threads
    assert [record.getMessage() for record in caplog.records] == []
    adapter = session.get_adapter(socket_url)
    assert len(adapter.pools) == 1  # one pool for the socket, whatever the path
