"""The status page's figures from what the servers keep: nginx's log lines, upstreams and counters, uWSGI stats."""

import threading
import time

import pytest

from servicekit.status import app
from servicekit.status.collector import (
    Collector,
    Served,
    figures,
    parse_log_line,
    parse_stub_status,
    parse_upstreams,
    workers_of,
)

UPSTREAMS = """map $route_service $route_service_known {
    default 0;
    service1 1;
    service2 1;
}
upstream service1 {
    server unix:/run/uwsgi/service1/aaaa11112222.sock max_fails=0;
    server unix:/run/uwsgi/service1/bbbb33334444.sock max_fails=0;
}
upstream service2 {
    server unix:/run/uwsgi/service2/no-replica.sock down;
}
"""

STUB_STATUS = """Active connections: 7
server accepts handled requests
 120 120 345
Reading: 0 Writing: 1 Waiting: 6
"""


def test_a_log_line_names_the_replica_that_answered_last():
    datagram = (
        b"<190>Nov 28 21:00:00 gateway: 1700000000.250|service1|"
        b"unix:/run/uwsgi/service1/aaaa11112222.sock, unix:/run/uwsgi/service1/bbbb33334444.sock|200|0.012"
    )
    assert parse_log_line(datagram) == Served(1700000000.25, "service1", "bbbb33334444", 200, 0.012)


@pytest.mark.parametrize(
    "datagram", [b"", b"no header at all", b"<190>Nov 28 21:00:00 gateway: 1|2|3", b"<190>x: a|s|-|200|0.1"]
)
def test_a_line_that_is_not_the_format_is_skipped(datagram):
    assert parse_log_line(datagram) is None


def test_a_request_the_gateway_answered_itself_has_no_replica():
    assert parse_log_line(b"<190>Nov 28 21:00:00 gateway: 1.0||-|404|0.000").instance == ""


def test_figures_over_the_window():
    served = [Served(0, "s", "r", 200, seconds / 1000) for seconds in range(1, 101)]
    served.append(Served(0, "s", "r", 503, 0.001))
    result = figures(served, 10)
    assert result["requests_per_second"] == 10.1
    assert result["errors"] == 1
    assert 49 <= result["p50_ms"] <= 51 and 98 <= result["p99_ms"] <= 100


def test_no_requests_is_a_zero_rate_and_no_latency():
    assert figures([], 10) == {"requests_per_second": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0}


def test_the_replicas_are_the_upstreams_servers_but_the_placeholder():
    assert parse_upstreams(UPSTREAMS) == {"service1": ["aaaa11112222", "bbbb33334444"], "service2": []}


def test_the_gateway_counters_from_stub_status():
    assert parse_stub_status(STUB_STATUS) == {"active_connections": 7, "requests_total": 345}


def test_workers_from_uwsgi_stats():
    stats = {
        "workers": [{"id": 1, "status": "busy", "requests": 5, "pid": 9}, {"id": 2, "status": "idle", "requests": 0}]
    }
    assert workers_of(stats) == [{"id": 1, "status": "busy", "requests": 5}, {"id": 2, "status": "idle", "requests": 0}]


@pytest.fixture
def collector():
    polled = Collector()
    workers = [{"id": 1, "status": "busy", "requests": 3}, {"id": 2, "status": "idle", "requests": 1}]
    polled.replicas = {"service1": {"aaaa11112222": workers}, "service2": {}}
    polled.gateway = {"active_connections": 2, "requests_total": 10}
    polled.polled_at = 1000.0
    for at in (985.0, 995.0, 996.0):  # the first is older than the window
        polled.add(Served(at, "service1", "aaaa11112222", 200, 0.004))
    return polled


def test_the_snapshot_counts_each_replica_within_the_window_only(collector):
    snapshot = collector.snapshot(now=1000.0)
    (service1, service2) = snapshot["services"]
    (replica,) = service1["replicas"]
    assert (replica["instance"], replica["busy"], replica["idle"]) == ("aaaa11112222", 1, 1)
    assert replica["requests_per_second"] == 0.2
    assert service2 == {"name": "service2", "replicas": [], **figures([], 10)}
    assert snapshot["gateway"]["active_connections"] == 2


def test_the_page_is_a_table_with_a_row_per_service_and_replica(collector, monkeypatch):
    monkeypatch.setattr(app, "collector", collector)
    page = app.page(collector.snapshot(now=1000.0))
    assert page.count('<tr class="service">') == 2
    assert '<tr class="replica" data-service="service1">' in page
    assert "<td>1 busy / 1 idle</td>" in page
    assert "{{" not in page


def test_names_in_the_page_are_escaped(collector):
    collector.replicas = {"<script>": {}}
    assert "<script>" not in app.rows_of(collector.snapshot(now=1000.0)).replace('<th scope="row">', "")


def test_an_unwatched_collector_polls_nothing_and_a_first_look_polls_at_once(monkeypatch):
    watched = Collector()
    polls = []
    monkeypatch.setattr(watched, "poll", lambda: polls.append(time.monotonic()))
    watched.watched.set()  # a stale wake-up: nobody has read the page
    threading.Thread(target=watched.poll_forever, daemon=True).start()
    time.sleep(0.3)
    assert polls == []  # waits for a reader, polling nothing
    watched.watch()
    assert len(polls) == 1  # the first look polls before it answers
    time.sleep(2.5)
    assert len(polls) >= 3  # and polling goes on every second while watched


def call(path: str) -> tuple[str, dict, bytes]:
    answered = {}
    body = b"".join(
        app.application(
            {"PATH_INFO": path, "REQUEST_METHOD": "GET"},
            lambda status, headers: answered.update(status=status, headers=dict(headers)),
        )
    )
    return answered["status"], answered["headers"], body


def test_turned_off_the_page_and_its_data_are_a_json_404(monkeypatch):
    monkeypatch.setattr(app, "ENABLED", False)
    for path in ("/status/", "/status/data.json"):
        status, headers, body = call(path)
        assert status.startswith("404") and headers["Content-Type"] == "application/json"
        assert "STATUS_PAGE=false" in body.decode()


def test_its_own_script_and_style_are_served_with_their_types(monkeypatch):
    monkeypatch.setattr(app.collector, "watch", lambda: None)
    assert call("/status/status.js")[1]["Content-Type"].startswith("application/javascript")
    assert call("/status/status.css")[1]["Content-Type"].startswith("text/css")
    assert call("/status/nothing.js")[0].startswith("404")
